// The runtime model of a gpt-tiny or vit-tiny checkpoint, converted in memory for `lowbit inspect
// --checkpoint RUN --metrics` (the image models' counterpart is in runtime_commands.cpp).
#pragma once
#include <string>

#include "runtime/decoder_model.h"
#include "runtime/encoder_model.h"

namespace lowbit::cli {

// gpt-tiny: a QAT checkpoint converts as `lowbit convert --checkpoint RUN` does; an FP32 one is
// rounded to 8-bit per-channel weights first (`lowbit convert --checkpoint RUN --wbits 8
// --group-size 0`), the stand-in the image models get too. `fp32` says which.
runtime::DecoderModel decoder_of_checkpoint(const std::string& path, bool& fp32);

// vit-tiny: a QAT or PTQ checkpoint converts as `lowbit convert` does; an FP32 one is first
// quantized at W8A8 (per-channel round-to-nearest weights, activation ranges from one batch of
// random images: only shapes and widths matter here).
runtime::EncoderModel encoder_of_checkpoint(const std::string& path, bool& fp32);

}  // namespace lowbit::cli
