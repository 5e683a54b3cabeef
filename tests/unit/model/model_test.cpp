// Model layer: the forward pass against a naive double-precision reference written here from
// the architecture definitions, batch/decode consistency, and load-time validation errors.
#include <gtest/gtest.h>

#include <cmath>

#include "model/model.h"
#include "tiny_model.h"

namespace edgellm {
namespace {

using testing::make_tiny;
using testing::TinySpec;
using Vec = std::vector<double>;

// ---- naive reference, independent of src/model and src/ops ----
struct Ref {
  const io::GgufFile& f;
  TinySpec s;
  const float* T(const std::string& name) const {
    const io::TensorInfo* t = f.find_tensor(name);
    return t ? reinterpret_cast<const float*>(t->data) : nullptr;
  }
  Vec matvec(const float* W, const Vec& x, int n_out) const {
    Vec y(n_out, 0.0);
    for (int o = 0; o < n_out; ++o)
      for (size_t i = 0; i < x.size(); ++i) y[o] += W[o * x.size() + i] * x[i];
    return y;
  }
  static Vec rmsnorm(const Vec& x, const float* w) {
    double ss = 0;
    for (double v : x) ss += v * v;
    const double r = 1.0 / std::sqrt(ss / x.size() + 1e-5);
    Vec y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * r * w[i];
    return y;
  }
  static void rope(double* h, int hd, int pos, double base, bool neox) {
    for (int i = 0; i < hd / 2; ++i) {
      const double th = pos * std::pow(base, -2.0 * i / hd);
      const int a = neox ? i : 2 * i, b = neox ? i + hd / 2 : 2 * i + 1;
      const double x0 = h[a], x1 = h[b];
      h[a] = x0 * std::cos(th) - x1 * std::sin(th);
      h[b] = x0 * std::sin(th) + x1 * std::cos(th);
    }
  }

  std::vector<Vec> logits(const std::vector<int>& toks) const {
    const bool gemma = s.arch == "gemma3", qwen = s.arch == "qwen2";
    const int d = s.n_embd, hd = s.head_dim, qd = s.n_head * hd, kvd = s.n_head_kv * hd;
    const int n = static_cast<int>(toks.size());
    std::vector<Vec> x(n, Vec(d));
    for (int t = 0; t < n; ++t)
      for (int i = 0; i < d; ++i)
        x[t][i] = T("token_embd.weight")[toks[t] * d + i] * (gemma ? std::sqrt(double(d)) : 1.0);
    for (int il = 0; il < s.n_layer; ++il) {
      const std::string p = "blk." + std::to_string(il) + ".";
      const bool swa = gemma && il % 6 < 5;
      const double base = swa ? 10000.0 : 1000000.0;
      std::vector<Vec> q(n), k(n), v(n);
      for (int t = 0; t < n; ++t) {
        Vec xn = rmsnorm(x[t], T(p + "attn_norm.weight"));
        q[t] = matvec(T(p + "attn_q.weight"), xn, qd);
        k[t] = matvec(T(p + "attn_k.weight"), xn, kvd);
        v[t] = matvec(T(p + "attn_v.weight"), xn, kvd);
        if (qwen) {
          for (int i = 0; i < qd; ++i) q[t][i] += T(p + "attn_q.bias")[i];
          for (int i = 0; i < kvd; ++i) k[t][i] += T(p + "attn_k.bias")[i], v[t][i] += T(p + "attn_v.bias")[i];
        }
        for (int h = 0; h < s.n_head; ++h) {
          if (gemma) {
            Vec hv(q[t].begin() + h * hd, q[t].begin() + (h + 1) * hd);
            hv = rmsnorm(hv, T(p + "attn_q_norm.weight"));
            std::copy(hv.begin(), hv.end(), q[t].begin() + h * hd);
          }
          rope(&q[t][h * hd], hd, t, base, gemma || qwen);
        }
        for (int h = 0; h < s.n_head_kv; ++h) {
          if (gemma) {
            Vec hv(k[t].begin() + h * hd, k[t].begin() + (h + 1) * hd);
            hv = rmsnorm(hv, T(p + "attn_k_norm.weight"));
            std::copy(hv.begin(), hv.end(), k[t].begin() + h * hd);
          }
          rope(&k[t][h * hd], hd, t, base, gemma || qwen);
        }
      }
      for (int t = 0; t < n; ++t) {
        Vec att(qd, 0.0);
        for (int h = 0; h < s.n_head; ++h) {
          const int kh = h / (s.n_head / s.n_head_kv);
          const int lo = swa ? std::max(0, t - s.sliding_window + 1) : 0;
          Vec sc;
          double mx = -1e300;
          for (int j = lo; j <= t; ++j) {
            double dot = 0;
            for (int i = 0; i < hd; ++i) dot += q[t][h * hd + i] * k[j][kh * hd + i];
            sc.push_back(dot / std::sqrt(double(hd)));
            mx = std::max(mx, sc.back());
          }
          double sum = 0;
          for (double& e : sc) sum += (e = std::exp(e - mx));
          for (int j = lo; j <= t; ++j)
            for (int i = 0; i < hd; ++i) att[h * hd + i] += sc[j - lo] / sum * v[j][kh * hd + i];
        }
        Vec o = matvec(T(p + "attn_output.weight"), att, d);
        if (gemma) o = rmsnorm(o, T(p + "post_attention_norm.weight"));
        for (int i = 0; i < d; ++i) x[t][i] += o[i];
        Vec xn = rmsnorm(x[t], T(p + "ffn_norm.weight"));
        Vec g = matvec(T(p + "ffn_gate.weight"), xn, s.n_ff), u = matvec(T(p + "ffn_up.weight"), xn, s.n_ff);
        for (int i = 0; i < s.n_ff; ++i) {
          const double a = g[i];
          g[i] = gemma ? 0.5 * a * (1 + std::tanh(std::sqrt(2 / M_PI) * (a + 0.044715 * a * a * a))) * u[i]
                       : a / (1 + std::exp(-a)) * u[i];
        }
        Vec f = matvec(T(p + "ffn_down.weight"), g, d);
        if (gemma) f = rmsnorm(f, T(p + "post_ffw_norm.weight"));
        for (int i = 0; i < d; ++i) x[t][i] += f[i];
      }
    }
    std::vector<Vec> out(n);
    const float* head = s.tied ? T("token_embd.weight") : T("output.weight");
    for (int t = 0; t < n; ++t) out[t] = matvec(head, rmsnorm(x[t], T("output_norm.weight")), s.n_vocab);
    return out;
  }
};

std::vector<int> some_tokens(int n, int vocab) {
  std::vector<int> t;
  for (int i = 0; i < n; ++i) t.push_back((i * 7 + 3) % vocab);
  return t;
}

void expect_close(const float* got, const Vec& want, double tol, const std::string& what) {
  double max_diff = 0;
  for (size_t i = 0; i < want.size(); ++i) max_diff = std::max(max_diff, std::abs(got[i] - want[i]));
  EXPECT_LT(max_diff, tol) << what;
}

class ArchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ArchTest, BatchedPrefillMatchesNaiveReference) {
  TinySpec s;
  s.arch = GetParam();
  s.n_layer = s.arch == "gemma3" ? 6 : 2;  // gemma3: five sliding-window layers and one global
  s.tied = s.arch != "qwen2";
  auto tf = make_tiny(s);
  auto model = model::Model::from_file(std::move(tf.file));
  const auto toks = some_tokens(11, s.n_vocab);  // longer than the sliding window
  const auto want = Ref{model->file(), s}.logits(toks);

  model::KvCache kv(model->config(), 32);
  model::Workspace ws;
  ops::ThreadPool pool(2);
  model::Batch b;
  for (int t = 0; t < 11; ++t) b.add(toks[t], t, &kv, true);
  std::vector<float> logits(11 * s.n_vocab);
  model->forward(b, ws, pool, logits.data());
  for (int t = 0; t < 11; ++t)
    expect_close(&logits[t * s.n_vocab], want[t], 2e-3, s.arch + " position " + std::to_string(t));
  EXPECT_EQ(kv.size(), 11);
}

TEST_P(ArchTest, DecodeStepsAndInterleavedSequencesMatchReference) {
  TinySpec s;
  s.arch = GetParam();
  s.n_layer = s.arch == "gemma3" ? 6 : 2;
  auto tf = make_tiny(s);
  auto model = model::Model::from_file(std::move(tf.file));
  const auto a = some_tokens(9, s.n_vocab);
  std::vector<int> b_toks = {5, 1, 30, 2, 2, 17, 8};
  const auto want_a = Ref{model->file(), s}.logits(a);
  const auto want_b = Ref{model->file(), s}.logits(b_toks);

  // Sequence A: prompt of 4 in one pass, then one token per pass; B decodes alongside it in
  // the same batches (continuous batching).
  model::KvCache kva(model->config(), 16), kvb(model->config(), 16);
  model::Workspace ws;
  ops::ThreadPool pool(2);
  std::vector<float> logits(8 * s.n_vocab);
  model::Batch batch;
  for (int t = 0; t < 4; ++t) batch.add(a[t], t, &kva, t == 3);
  batch.add(b_toks[0], 0, &kvb, true);
  model->forward(batch, ws, pool, logits.data());
  expect_close(&logits[0], want_a[3], 2e-3, "A after prompt");
  expect_close(&logits[s.n_vocab], want_b[0], 2e-3, "B first token");
  for (int step = 1; step < 6; ++step) {
    batch.clear();
    batch.add(b_toks[step], step, &kvb, true);
    batch.add(a[3 + step], 3 + step, &kva, true);
    model->forward(batch, ws, pool, logits.data());
    expect_close(&logits[0], want_b[step], 2e-3, "B step " + std::to_string(step));
    expect_close(&logits[s.n_vocab], want_a[3 + step], 2e-3, "A step " + std::to_string(step));
  }
}

INSTANTIATE_TEST_SUITE_P(Families, ArchTest, ::testing::Values("llama", "qwen2", "gemma3"));

TEST(ModelLoad, UnsupportedArchitectureIsNamed) {
  TinySpec s;
  s.arch = "mamba";
  auto tf = make_tiny(s);
  try {
    model::Model::from_file(std::move(tf.file));
    FAIL() << "expected an error";
  } catch (const ModelFormatError& e) {
    EXPECT_NE(std::string(e.what()).find("architecture 'mamba' is not supported"), std::string::npos) << e.what();
  }
}

TEST(ModelLoad, MissingTensorIsNamed) {
  auto bad = make_tiny(TinySpec{}, [](io::GgufWriter& w) { w.set_u32("llama.block_count", 3); });
  try {
    model::Model::from_file(std::move(bad.file));
    FAIL() << "expected an error";
  } catch (const ModelFormatError& e) {
    EXPECT_NE(std::string(e.what()).find("blk.2.attn_norm.weight"), std::string::npos) << e.what();
  }
}

TEST(ModelLoad, ShapeMismatchIsReported) {
  auto bad = make_tiny(TinySpec{}, [](io::GgufWriter& w) { w.set_u32("llama.feed_forward_length", 64); });
  EXPECT_THROW(model::Model::from_file(std::move(bad.file)), ModelFormatError);
}

TEST(ModelLoad, HeadCountsMustDivide) {
  auto bad = make_tiny(TinySpec{}, [](io::GgufWriter& w) { w.set_u32("llama.attention.head_count_kv", 3); });
  EXPECT_THROW(model::Model::from_file(std::move(bad.file)), ModelFormatError);
}

TEST(ModelLoad, MissingRequiredKeyIsNamed) {
  auto bad = make_tiny(TinySpec{}, [](io::GgufWriter& w) { w.remove("llama.embedding_length"); });
  try {
    model::Model::from_file(std::move(bad.file));
    FAIL() << "expected an error";
  } catch (const ModelFormatError& e) {
    EXPECT_NE(std::string(e.what()).find("llama.embedding_length"), std::string::npos) << e.what();
  }
}

TEST(ModelForward, RejectsBadTokensAndPositions) {
  auto tf = make_tiny(TinySpec{});
  auto model = model::Model::from_file(std::move(tf.file));
  model::KvCache kv(model->config(), 4);
  model::Workspace ws;
  ops::ThreadPool pool(1);
  std::vector<float> logits(40);
  model::Batch b;
  b.add(40, 0, &kv, true);  // vocabulary is 0..39
  EXPECT_THROW(model->forward(b, ws, pool, logits.data()), InvalidArgument);
  b.clear();
  b.add(1, 1, &kv, true);  // skips position 0
  EXPECT_THROW(model->forward(b, ws, pool, logits.data()), InvalidArgument);
  b.clear();
  for (int t = 0; t < 5; ++t) b.add(1, t, &kv, false);  // past the context of 4
  EXPECT_THROW(model->forward(b, ws, pool, logits.data()), InvalidArgument);
  EXPECT_EQ(kv.size(), 0);  // nothing committed by failed passes
}

}  // namespace
}  // namespace edgellm
