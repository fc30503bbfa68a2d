// The study's table and CSV carry every cell; the basin result's JSON marks unreached re-entry
// as null.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "analysis/basin.h"
#include "analysis/ptq_vs_qat_study.h"

namespace lowbit::analysis {
namespace {

TEST(Study, TableAndCsvHoldEveryCell) {
  StudyResult r;
  r.model = "cnn";
  r.fp32_accuracy = 0.9;
  r.test_images = 100;
  r.cells = {{4, "rtn", 0.85, 0.4, 1.0}, {4, "gptq", 0.88, 0.3, 2.0}, {2, "qat-ste", 0.7, 0.9, 3.0}};
  const std::string table = r.table();
  EXPECT_NE(table.find("| 4 | 85.00 | 88.00 | - | - |"), std::string::npos) << table;
  EXPECT_NE(table.find("| 2 | - | - | 70.00 | - |"), std::string::npos) << table;
  const std::string csv = r.to_csv();
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);  // header, fp32, three cells
  EXPECT_NE(csv.find("cnn,2,8,qat-ste,0.7,0.9,3"), std::string::npos) << csv;
  const auto j = r.to_json();
  EXPECT_EQ(j["cells"].size(), 3u);
  EXPECT_EQ(j["cells"][1]["method"], "gptq");
}

TEST(Basin, JsonMarksUnreachedReentryAsNull) {
  BasinResult r;
  r.qat = {{0, 1.5, 0.0}, {1, std::nan(""), 0.2}};
  auto j = r.to_json();
  EXPECT_TRUE(j["qat"]["first_step_within"].is_null());
  EXPECT_TRUE(j["qat"]["steps"][1]["deployed_loss"].is_null());
  r.first_step_within = 1;
  EXPECT_EQ(r.to_json()["qat"]["first_step_within"], 1);
}

}  // namespace
}  // namespace lowbit::analysis
