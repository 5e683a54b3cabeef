// Batch handle: several sequences decoded together by the runtime's scheduler (continuous
// batching, the same path as the server's), for apps that answer several prompts at once.
#include <condition_variable>
#include <cstddef>

#include "capi/capi_impl.h"
#include "runtime/scheduler.h"

using namespace edgellm;
using namespace edgellm::capi;

struct edgellm_batch {
  edgellm_model* model;
  int32_t n_seq;
  std::unique_ptr<runtime::Scheduler> scheduler;
  std::mutex call_mu;                          // one call at a time
  std::vector<runtime::GenerateResult> last;   // what the items' results point into
};

namespace {

edgellm_batch_options default_batch_options() {
  edgellm_batch_options o{};
  o.struct_size = sizeof o;
  o.n_seq = 4;
  o.n_ctx = 4096;
  o.type_k = EDGELLM_KV_F32;
  o.type_v = EDGELLM_KV_F32;
  o.n_batch = 256;
  return o;
}

edgellm_batch_item default_item() {
  edgellm_batch_item it{};
  it.struct_size = sizeof it;
  return it;
}

// The item's request, checked; Failure names items[i].
runtime::JobRequest request(edgellm_batch& b, const edgellm_batch_item& it, size_t i) {
  const std::string at = "items[" + std::to_string(i) + "]";
  try {
    const runtime::Engine& engine = *b.model->engine;
    const auto sp = to_sampling(read_struct(it.sampling, default_sampling(), "sampling"));
    const auto o = read_struct(it.options, default_generate_options(), "options");
    runtime::JobRequest req;
    req.params = generate_params(*b.model, sp, o);
    if (it.prompt) {
      const int32_t n_vocab = engine.tokenizer().n_vocab();
      for (size_t k = 0; k < it.n_prompt; ++k)
        if (it.prompt[k] < 0 || it.prompt[k] >= n_vocab)
          throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "prompt[" + std::to_string(k) + "] = " +
                                                          std::to_string(it.prompt[k]) + " is not a token id"};
      req.prompt.assign(it.prompt, it.prompt + it.n_prompt);
    } else if (it.messages || it.n_messages > 0) {
      req.prompt = chat_prompt(engine, it.messages, it.n_messages, req.params);
    }
    if (req.prompt.empty())
      throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "no prompt: give prompt tokens or messages"};
    const int32_t n_ctx = b.scheduler->options().n_ctx;
    if (req.prompt.size() >= static_cast<size_t>(n_ctx))
      throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "the prompt is " + std::to_string(req.prompt.size()) +
                                                      " tokens but a sequence's context holds " +
                                                      std::to_string(n_ctx) + " (edgellm_batch_options.n_ctx)"};
    return req;
  } catch (const Failure& f) {
    throw Failure{f.status, at + ": " + f.message};
  } catch (const InvalidArgument& e) {
    throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, at + ": " + e.what()};
  }
}

// Writes the item's status if its struct_size reaches that field.
void set_status(edgellm_batch_item& it, edgellm_status st) {
  if (it.struct_size >= offsetof(edgellm_batch_item, status) + sizeof it.status) it.status = st;
}

}  // namespace

extern "C" {

edgellm_status edgellm_batch_options_init(edgellm_batch_options* options, size_t struct_size) {
  return init_struct(options, struct_size, default_batch_options(), "options");
}

edgellm_status edgellm_batch_create(edgellm_model* model, const edgellm_batch_options* options,
                                    edgellm_batch** out_batch) {
  return guard([&] {
    require(model, "model");
    require(out_batch, "out_batch");
    const runtime::Engine& engine = engine_of(model, "edgellm_batch_create");
    const auto o = read_struct(options, default_batch_options(), "options");
    if (o.n_seq < 1 || o.n_seq > 256)
      throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "n_seq must be between 1 and 256, got " + std::to_string(o.n_seq)};
    if (o.n_ctx < 2)
      throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "n_ctx must be at least 2, got " + std::to_string(o.n_ctx)};
    if (o.n_batch < 1)
      throw Failure{EDGELLM_ERR_INVALID_ARGUMENT, "n_batch must be at least 1, got " + std::to_string(o.n_batch)};
    runtime::SchedulerOptions so;
    so.n_slots = o.n_seq;
    so.n_ctx = o.n_ctx;
    so.n_batch = o.n_batch;
    so.n_batch_shared = o.n_batch;  // no latency goal here: the whole budget for every pass
    so.max_queue = 1 << 20;         // a call's items beyond the sequences wait, never refused
    so.kv_types = {kv_type(o.type_k, "type_k"), kv_type(o.type_v, "type_v")};
    auto b = std::make_unique<edgellm_batch>();
    b->model = model;
    b->n_seq = o.n_seq;
    b->scheduler = std::make_unique<runtime::Scheduler>(engine, so);
    *out_batch = b.release();
  });
}

void edgellm_batch_free(edgellm_batch* batch) { delete batch; }

edgellm_status edgellm_batch_generate(edgellm_batch* batch, edgellm_batch_item* items, size_t n_items) {
  return guard([&] {
    require(batch, "batch");
    if (n_items > 0) require(items, "items");
    std::lock_guard<std::mutex> call(batch->call_mu);
    std::vector<edgellm_batch_item> in(n_items);
    std::vector<runtime::JobRequest> reqs;
    reqs.reserve(n_items);
    for (size_t i = 0; i < n_items; ++i) {
      in[i] = read_struct(&items[i], default_item(), ("items[" + std::to_string(i) + "]").c_str());
      reqs.push_back(request(*batch, in[i], i));
    }
    // Every job reports once, on the scheduler thread; this thread waits for all of them.
    std::mutex mu;
    std::condition_variable cv;
    size_t pending = n_items;
    std::vector<runtime::JobOutcome> outcomes(n_items);
    for (size_t i = 0; i < n_items; ++i)
      reqs[i].on_done = [&, i](runtime::JobOutcome& out) {
        std::lock_guard<std::mutex> lk(mu);
        outcomes[i] = std::move(out);
        if (--pending == 0) cv.notify_all();
      };
    if (n_items == 0) return;
    if (batch->scheduler->submit_all(std::move(reqs)).empty())
      throw Failure{EDGELLM_ERR_INTERNAL, "the batch's scheduler is stopping"};
    {
      std::unique_lock<std::mutex> lk(mu);
      cv.wait(lk, [&] { return pending == 0; });
    }
    batch->last.clear();
    batch->last.reserve(n_items);
    edgellm_status first = EDGELLM_OK;
    std::string first_error;
    for (size_t i = 0; i < n_items; ++i) {
      auto& out = outcomes[i];
      edgellm_status st = EDGELLM_OK;
      if (!out.error.empty()) {
        st = out.client_error ? EDGELLM_ERR_INVALID_ARGUMENT : EDGELLM_ERR_INTERNAL;
        if (first == EDGELLM_OK) {
          first = st;
          first_error = "items[" + std::to_string(i) + "]: " + out.error;
        }
      }
      set_status(items[i], st);
      batch->last.push_back(std::move(out.result));
      if (!in[i].result) continue;
      const auto& r = batch->last.back();
      edgellm_generate_result full{};
      full.struct_size = sizeof full;
      full.finish_reason = finish_reason(r.finish_reason);
      full.text = r.text.c_str();
      full.text_len = r.text.size();
      full.tokens = r.tokens.data();
      full.n_tokens = static_cast<int32_t>(r.tokens.size());
      full.n_prompt = r.n_prompt;
      full.n_prompt_evaluated = r.n_prompt_evaluated;
      full.prefill_seconds = r.prefill_seconds;
      full.decode_seconds = r.decode_seconds;
      write_struct(in[i].result, full, ("items[" + std::to_string(i) + "].result").c_str());
    }
    if (first != EDGELLM_OK) throw Failure{first, first_error};
  });
}

edgellm_status edgellm_batch_get_stats(const edgellm_batch* batch, edgellm_batch_stats* stats) {
  return guard([&] {
    require(batch, "batch");
    require(stats, "stats");
    const auto st = batch->scheduler->stats();
    edgellm_batch_stats full{};
    full.struct_size = sizeof full;
    full.passes = st.steps;
    full.tokens = st.batched_tokens;
    full.n_seq = batch->n_seq;
    write_struct(stats, full, "stats");
  });
}

}  // extern "C"
