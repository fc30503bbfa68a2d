#include "runtime/lowbit_runtime_c.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <string>

#include "base/error.h"
#include "runtime/session.h"

struct lowbit_session {
  lowbit::runtime::Session session;
};

struct lowbit_model {
  std::shared_ptr<const lowbit::runtime::PreparedModel> prepared;
};

namespace {

thread_local std::string g_last_error;

template <class Fn>
int guarded(Fn fn) {
  try {
    fn();
    g_last_error.clear();
    return 0;
  } catch (const std::exception& e) {
    g_last_error = e.what();
  } catch (...) {
    g_last_error = "unknown error";
  }
  return 1;
}

void copy_out(const lowbit::runtime::RunResult& r, float* logits, int32_t* argmax, int32_t* int_logits) {
  if (logits) std::copy(r.logits.begin(), r.logits.end(), logits);
  if (argmax) std::copy(r.argmax.begin(), r.argmax.end(), argmax);
  if (int_logits) std::copy(r.int_logits.begin(), r.int_logits.end(), int_logits);
}

}  // namespace

extern "C" {

lowbit_session* lowbit_session_load(const char* path, int threads, const char* isa) {
  lowbit_session* s = nullptr;
  guarded([&] {
    if (path == nullptr) throw lowbit::Error("lowbit_session_load: path is NULL");
    lowbit::runtime::SessionOptions o;
    o.threads = threads;
    o.isa = isa ? isa : "";
    s = new lowbit_session{lowbit::runtime::Session::load(path, o)};
  });
  return s;
}

lowbit_model* lowbit_model_load(const char* path, const char* isa) {
  lowbit_model* m = nullptr;
  guarded([&] {
    if (path == nullptr) throw lowbit::Error("lowbit_model_load: path is NULL");
    lowbit::runtime::PrepareOptions o;
    o.isa = isa ? isa : "";
    m = new lowbit_model{lowbit::runtime::PreparedModel::load(path, o)};
  });
  return m;
}

void lowbit_model_free(lowbit_model* model) { delete model; }

lowbit_session* lowbit_session_create(const lowbit_model* model, int threads) {
  lowbit_session* s = nullptr;
  guarded([&] {
    if (model == nullptr) throw lowbit::Error("lowbit_session_create: model is NULL");
    lowbit::runtime::SessionOptions o;
    o.threads = threads;
    s = new lowbit_session{lowbit::runtime::Session(model->prepared, o)};
  });
  return s;
}

void lowbit_session_free(lowbit_session* session) { delete session; }

int lowbit_session_input_shape(const lowbit_session* s, int32_t* c, int32_t* h, int32_t* w) {
  return guarded([&] {
    if (!s) throw lowbit::Error("lowbit_session_input_shape: session is NULL");
    const auto& m = s->session.model();
    if (c) *c = m.in_channels;
    if (h) *h = m.in_height;
    if (w) *w = m.in_width;
  });
}

int32_t lowbit_session_classes(const lowbit_session* s) {
  int32_t classes = -1;
  guarded([&] {
    if (!s) throw lowbit::Error("lowbit_session_classes: session is NULL");
    const auto shapes = lowbit::runtime::validate_model(s->session.model());
    classes = static_cast<int32_t>(shapes.back().size());
  });
  return classes;
}

int lowbit_session_run(lowbit_session* s, const float* input, int64_t batch, float* logits, int32_t* argmax) {
  return guarded([&] {
    if (!s || !input) throw lowbit::Error("lowbit_session_run: session or input is NULL");
    copy_out(s->session.run(input, batch), logits, argmax, nullptr);
  });
}

int lowbit_session_run_int(lowbit_session* s, const float* input, int64_t batch, int32_t* int_logits) {
  return guarded([&] {
    if (!s || !input) throw lowbit::Error("lowbit_session_run_int: session or input is NULL");
    copy_out(s->session.run(input, batch), nullptr, nullptr, int_logits);
  });
}

int lowbit_session_run_u8(lowbit_session* s, const uint8_t* pixels, int64_t batch, float* logits, int32_t* argmax) {
  return guarded([&] {
    if (!s || !pixels) throw lowbit::Error("lowbit_session_run_u8: session or pixels is NULL");
    copy_out(s->session.run_u8(pixels, batch), logits, argmax, nullptr);
  });
}

const char* lowbit_last_error(void) { return g_last_error.c_str(); }

}  // extern "C"
