// Writes a seed corpus of small valid GGUF files of varied shapes into the directory given
// as argv[1]: vocab-only, every value type, nested arrays, several tensor types and ranks,
// a custom alignment, and an empty file body. Usage: gguf_seed_gen OUT_DIR
#include <cstdio>
#include <string>
#include <vector>

#include "io/gguf_writer.h"

using namespace edgellm::io;

namespace {

std::vector<uint8_t> pattern(size_t n, unsigned seed) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((i * 131 + seed * 17) & 0xFF);
  return b;
}

size_t nbytes(TensorType t, const std::vector<int64_t>& ne) {
  size_t rows = 1;
  for (size_t i = 1; i < ne.size(); ++i) rows *= static_cast<size_t>(ne[i]);
  return row_bytes(t, ne[0]) * rows;
}

void add(GgufWriter& w, const std::string& name, TensorType t, std::vector<int64_t> ne, unsigned seed) {
  w.add_tensor(name, t, ne, pattern(nbytes(t, ne), seed));
}

GgufWriter all_scalars() {
  GgufWriter w;
  w.set_u8("u8", 1);
  w.set_i8("i8", -1);
  w.set_u16("u16", 2);
  w.set_i16("i16", -2);
  w.set_u32("u32", 3);
  w.set_i32("i32", -3);
  w.set_u64("u64", 4);
  w.set_i64("i64", -4);
  w.set_f32("f32", 0.5f);
  w.set_f64("f64", 0.25);
  w.set_bool("bool", true);
  w.set_string("str", "text");
  return w;
}

GgufWriter vocab_only() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string_array("tokenizer.ggml.tokens", {"a", "b", "ab", "<s>", "</s>"});
  w.set_int_array("tokenizer.ggml.token_type", ValueType::INT32, {1, 1, 1, 3, 3});
  w.set_float_array("tokenizer.ggml.scores", ValueType::FLOAT32, {0, -1, -2, 0, 0});
  w.set_string_array("tokenizer.ggml.merges", {"a b"});
  w.set_u32("tokenizer.ggml.bos_token_id", 3);
  return w;
}

GgufWriter arrays() {
  GgufWriter w;
  for (ValueType t : {ValueType::UINT8, ValueType::INT8, ValueType::UINT16, ValueType::INT16,
                      ValueType::UINT32, ValueType::INT32, ValueType::UINT64, ValueType::INT64,
                      ValueType::BOOL})
    w.set_int_array("a." + std::string(value_type_name(t)), t, {0, 1, 0});
  w.set_float_array("a.f32", ValueType::FLOAT32, {1.5, 2.5});
  w.set_float_array("a.f64", ValueType::FLOAT64, {-1.0});
  w.set_string_array("a.str", {"", "x"});
  Value inner;
  inner.type = ValueType::ARRAY;
  inner.elem_type = ValueType::INT16;
  inner.ints = {7, 8};
  Value outer;
  outer.type = ValueType::ARRAY;
  outer.elem_type = ValueType::ARRAY;
  outer.nested = {inner, inner};
  w.set("a.nested", outer);
  return w;
}

GgufWriter tiny_model() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 1);
  w.set_u32("llama.embedding_length", 32);
  add(w, "token_embd.weight", TensorType::Q8_0, {32, 4}, 1);
  add(w, "blk.0.attn_norm.weight", TensorType::F32, {32}, 2);
  add(w, "blk.0.attn_q.weight", TensorType::Q4_0, {32, 32}, 3);
  add(w, "blk.0.ffn_up.weight", TensorType::Q4_1, {32, 2, 2}, 4);
  add(w, "output_norm.weight", TensorType::F16, {32}, 5);
  return w;
}

GgufWriter k_quants() {
  GgufWriter w;
  w.set_alignment(64);
  w.set_string("general.architecture", "gemma3");
  add(w, "q4k", TensorType::Q4_K, {256}, 6);
  add(w, "q6k", TensorType::Q6_K, {256, 1, 1, 1}, 7);
  add(w, "bf16", TensorType::BF16, {3, 5}, 8);
  add(w, "i32", TensorType::I32, {1}, 9);
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const std::vector<std::pair<std::string, GgufWriter>> seeds = {
      {"empty", GgufWriter()},       {"scalars", all_scalars()}, {"vocab", vocab_only()},
      {"arrays", arrays()},          {"tiny_model", tiny_model()}, {"k_quants", k_quants()},
  };
  for (const auto& [name, w] : seeds) w.write(dir + "/" + name + ".gguf");
  std::printf("wrote %zu seeds to %s\n", seeds.size(), dir.c_str());
  return 0;
}
