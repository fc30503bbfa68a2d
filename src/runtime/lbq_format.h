// The container shared by every .lbq model file (runtime-internal; model_file.h documents the
// layout): the 64-byte header, the graph section's primitive fields, the tensor table and the
// 64-byte-aligned tensor data, with their CRC-32s. Version 1 files hold a graph of CNN ops
// (model_file.cpp); version 2 files say in the header which kind of model their graph section
// describes (kind 2: a decoder language model, decoder_model_file.cpp; kind 3: an encoder image
// model, vit-tiny, encoder_model_file.cpp).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace lowbit::runtime::lbq {

constexpr uint32_t kKindHeaderAt = 60;  // version >= 2: model kind; version 1: reserved (0)
enum class ModelKind : uint32_t { Graph = 1, Decoder = 2, Encoder = 3 };

enum class DType : uint32_t { U8 = 1, I32 = 2, F32 = 3, FixedPoint = 4 };  // FixedPoint: (int32 m, int32 shift)

// Copies a tensor's bytes out of the file. A file may declare a tensor of 0 bytes, whose
// destination is an empty vector with a null data(); memcpy with a null pointer is undefined
// even for 0 bytes (found by fuzz/lbq_model_fuzz.cpp under UBSan).
inline void copy_tensor_bytes(void* dst, const char* src, size_t n) {
  if (n > 0) std::memcpy(dst, src, n);
}

struct Writer {
  std::string b;
  void u32(uint32_t v) { for (int i = 0; i < 4; ++i) b.push_back(static_cast<char>((v >> (8 * i)) & 0xFF)); }
  void i32(int32_t v) { u32(static_cast<uint32_t>(v)); }
  void u64(uint64_t v) { for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>((v >> (8 * i)) & 0xFF)); }
  void f32(float v);
  void f64(double v);
  void str(const std::string& s) { u32(static_cast<uint32_t>(s.size())); b += s; }
};

struct Reader {
  const std::string& b;
  const std::string& name;
  size_t pos, end;
  [[noreturn]] void fail(const std::string& what) const;
  void need(size_t n, const char* field);
  uint32_t u32(const char* field);
  int32_t i32(const char* field) { return static_cast<int32_t>(u32(field)); }
  uint64_t u64(const char* field);
  float f32(const char* field);
  double f64(const char* field);
  std::string str(const char* field, uint32_t max_len);
};

struct TensorOut {
  DType dtype;
  std::string bytes;
};

struct TensorRef {
  DType dtype;
  uint64_t offset, size;
};

// The validated header of a file: where the graph section and the data lie.
struct Header {
  uint32_t version = 0;
  uint32_t kind = 0;  // ModelKind for version >= 2, 0 for version 1
  uint64_t graph_offset = 0, graph_size = 0, data_offset = 0;
  uint32_t tensor_count = 0;
};

// Whether `bytes` begin with the header of a model of format `version` and `kind`: magic, version
// and kind fields only (a buffer too short or not a model: false); the loader then checks the rest
// and reports what is wrong. The one test of "which reader does this file want" (the CLI's
// dispatch, runtime::is_decoder_model_file, is_encoder_model_file, the fuzz harness).
bool bytes_have_kind(const std::string& bytes, uint32_t version, ModelKind kind);
// The same for the first 64 bytes of the file at `path` (a missing or shorter file: false).
bool file_has_kind(const std::string& path, uint32_t version, ModelKind kind);

// The tensors a graph section writer lays out: add() appends one and returns its index.
struct TensorList {
  std::vector<TensorOut> tensors;
  uint32_t add(DType dtype, const void* p, size_t n) {
    tensors.push_back({dtype, std::string(static_cast<const char*>(p), n)});
    return static_cast<uint32_t>(tensors.size() - 1);
  }
  uint32_t floats(const std::vector<float>& v) { return add(DType::F32, v.data(), v.size() * 4); }
};

// Tensor indices read from a graph section, resolved once the tensor table has been read.
struct TensorRequests {
  struct Request {
    uint32_t index;
    DType dtype;
    std::string field;  // named in errors, e.g. "layer 0 attn_q weights"
    std::vector<uint8_t>* u8;
    std::vector<float>* f32;
  };
  std::vector<Request> requests;
  void u8(uint32_t index, std::string field, std::vector<uint8_t>& out) {
    requests.push_back({index, DType::U8, std::move(field), &out, nullptr});
  }
  void f32(uint32_t index, std::string field, std::vector<float>& out) {
    requests.push_back({index, DType::F32, std::move(field), nullptr, &out});
  }
  // Checks that every index is in range, used once and of the dtype asked, copies the tensors out,
  // and that every tensor of the table is used ("tensor N is not referenced by <owner>").
  void resolve(const Reader& r, const std::vector<TensorRef>& refs, const std::string& owner) const;
};

// Appends the tensor table to graph section `g`, lays out header, graph and data, and seals the
// checksums. `kind` is written for version >= 2 (version 1: the field stays 0).
// Recomputes the graph and whole-file CRC-32s in place (model_file.h: reseal_model_bytes).
void reseal(std::string& b);

std::string assemble(uint32_t version, uint32_t kind, Writer& g, const std::vector<TensorOut>& tensors);

// Checks magic, version (one of `versions`), endianness, size, checksums and the section bounds;
// every violation is a lowbit::Error naming the file `name` and the field. `wrong_version`, when
// set, is called for a version outside `versions` that is known (e.g. a decoder file given to the
// CNN loader) before the generic "not supported" error.
Header read_header(const std::string& b, const std::string& name, const std::vector<uint32_t>& versions,
                   void (*wrong_version)(const Reader& r, uint32_t version, uint32_t kind) = nullptr);

// Reads the tensor table at r.pos (its count must equal the header's) and checks every entry's
// dtype, alignment, bounds, order and CRC-32.
std::vector<TensorRef> read_tensor_table(Reader& r, const Header& h);

}  // namespace lowbit::runtime::lbq
