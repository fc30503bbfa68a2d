/* C API of the lowbit integer runtime, for embedding (no C++ types cross this boundary).
 *
 *   lowbit_session* s = lowbit_session_load("model.lbq", 2, NULL);   // 2 threads, ISA auto
 *   if (!s) { fprintf(stderr, "%s\n", lowbit_last_error()); ... }
 *   int32_t classes = lowbit_session_classes(s);
 *   float logits[batch * classes]; int32_t top[batch];
 *   if (lowbit_session_run(s, input_nchw, batch, logits, top) != 0) { ...lowbit_last_error()... }
 *   lowbit_session_free(s);
 *
 * Threads: a lowbit_session must not be used by two threads at once. To serve from several
 * threads, load the model once and give each thread its own session over it; the model is
 * immutable and may be shared freely, and results are the same bits as from one thread:
 *
 *   lowbit_model* m = lowbit_model_load("model.lbq", NULL);   // once
 *   lowbit_session* s = lowbit_session_create(m, 1);          // per thread: buffers only
 *   ... lowbit_session_run(s, ...) ...
 *   lowbit_session_free(s);
 *   lowbit_model_free(m);   // any time: sessions keep the model alive until they are freed
 *
 * Errors: functions return NULL or a non-zero status and set a thread-local message that
 * lowbit_last_error() returns (valid until the next call on the same thread). */
#ifndef LOWBIT_RUNTIME_C_H
#define LOWBIT_RUNTIME_C_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lowbit_session lowbit_session;
typedef struct lowbit_model lowbit_model;

/* A model loaded and prepared for one kernel level (isa as below); immutable, thread-safe to share. */
lowbit_model* lowbit_model_load(const char* path, const char* isa);
void lowbit_model_free(lowbit_model* model);
/* A session over a shared model, with its own buffers and `threads` worker threads (<= 0: all cores). */
lowbit_session* lowbit_session_create(const lowbit_model* model, int threads);

/* isa: NULL or "" for automatic (LOWBIT_ISA or the best the CPU has), else "ref", "avx2", "avx512vnni" (x86-64
   builds), "neon", "neondot" (aarch64 builds). */
lowbit_session* lowbit_session_load(const char* path, int threads, const char* isa);
void lowbit_session_free(lowbit_session* session);
/* Input shape per item (C, H, W) and the number of logits per item. */
int lowbit_session_input_shape(const lowbit_session* session, int32_t* c, int32_t* h, int32_t* w);
int32_t lowbit_session_classes(const lowbit_session* session);
/* input: float [batch, C, H, W]. Any output pointer may be NULL. int_logits/logits: [batch, classes]. */
int lowbit_session_run(lowbit_session* session, const float* input, int64_t batch, float* logits, int32_t* argmax);
int lowbit_session_run_int(lowbit_session* session, const float* input, int64_t batch, int32_t* int_logits);
/* uint8 pixels [batch, C, H, W] meaning pixel / 255 (model input scale must be 1/255, zero point 0). */
int lowbit_session_run_u8(lowbit_session* session, const uint8_t* pixels, int64_t batch, float* logits, int32_t* argmax);
const char* lowbit_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
