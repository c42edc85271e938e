// augment.colored_noise: the reference's training augmentation (torch_audiomentations
// AddColoredNoise, per channel; spec §2) as a node over the kernel in ../kernels. Draws come
// from the framework's per-item generator, so the output does not depend on thread count.
#include <fftw3.h>
#include <w2p/plugin.hpp>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "augment/kernels/colored_noise.hpp"

namespace w2p::augment {
namespace {

class ColoredNoise final : public Node {
 public:
  static constexpr const char* kDoc =
      "Adds coloured Gaussian noise to every row of the f32 field `field` (the last axis is "
      "time; all leading axes are rows, e.g. the 7 channels of a wav2pos item or B x 7 of a "
      "batch): per row SNR ~ U[snr_db] and f_decay ~ U[f_decay], fs white samples shaped by "
      "1 / g^f_decay (g: the reference's linspace QUIRK, or sqrt_frequency), unit RMS, tiled "
      "to the row and scaled to the SNR against the row's RMS. Draw order as the reference: "
      "every row's SNR, every row's f_decay, then per row its white noise. Train-time only: "
      "with enabled=false items pass unchanged. With `out_field` set the noisy copy is added "
      "under that name and `field` stays clean (the reconstruction targets).";
  static constexpr Port kIn{"in"};
  static constexpr Port kOut{"out"};

  static std::vector<OptionSpec> options() {
    return {
        OptionSpec::boolean("enabled", true)
            .describe("add noise (training); false passes items through unchanged"),
        OptionSpec::string("field", "audio").describe("f32 field [..., time] to augment"),
        OptionSpec::string("out_field", "")
            .describe("field for the noisy copy; empty = replace `field`"),
        OptionSpec::float_list("snr_db", std::vector<double>{0.0, 30.0})
            .size(2)
            .range(-200, 200)
            .describe("[min, max) of the per-row signal-to-noise ratio, dB"),
        OptionSpec::float_list("f_decay", std::vector<double>{-2.0, 2.0})
            .size(2)
            .range(-20, 20)
            .describe("[min, max) of the per-row spectral decay exponent"),
        OptionSpec::integer("sample_rate", 16000)
            .range(2, 1e7)
            .describe("Hz, even: the noise is generated fs samples long and tiled"),
        OptionSpec::choice("shaping", {"reference_linspace", "sqrt_frequency"},
                           "reference_linspace")
            .describe("spectral axis g: the reference's linspace(1, sqrt(fs/2)) (QUIRK, spec "
                      "§2) or sqrt of the bin frequency (power ~ f^-f_decay)"),
    };
  }

  static Contract declare(const Options& o) {
    for (const char* key : {"snr_db", "f_decay"}) {
      const std::vector<double> r = o.get_float_list(key);
      if (r[0] > r[1]) {
        throw Error(ErrorKind::kConfig, std::string("option '") + key + "': minimum " +
                                            std::to_string(r[0]) + " is above maximum " +
                                            std::to_string(r[1]))
            .note("expected [min, max] with min <= max");
      }
    }
    if (o.get_int("sample_rate") % 2 != 0) {
      throw Error(ErrorKind::kConfig, "option 'sample_rate': must be even, got " +
                                          std::to_string(o.get_int("sample_rate")))
          .note("the reference's irfft returns fs samples only for an even fs");
    }
    const std::string field = o.get_string("field");
    const std::string out_field = o.get_string("out_field");
    const Schema in{{FieldSpec{field, TensorSpec::any(DType::kF32), "signals [..., time]"}}};
    return Contract()
        .input(kIn, in, "items to augment (other fields pass through)")
        .output_from(
            kOut, kIn,
            [field, out_field](const Schema& s) {
              if (out_field.empty() || out_field == field) return s;
              Schema out = s;
              out.fields.erase(
                  std::remove_if(out.fields.begin(), out.fields.end(),
                                 [&](const FieldSpec& f) { return f.name == out_field; }),
                  out.fields.end());
              FieldSpec noisy = *s.find(field);
              noisy.name = out_field;
              noisy.doc = "`" + field + "` with coloured noise added";
              out.fields.push_back(noisy);
              return out;
            },
            "the items with noise added")
        .max_concurrency(0);  // per-item generator; shapers come from a pool
  }

  explicit ColoredNoise(const Options& o)
      : enabled_(o.get_bool("enabled")),
        field_(o.get_string("field")),
        out_field_(o.get_string("out_field").empty() ? field_ : o.get_string("out_field")),
        sample_rate_(static_cast<int>(o.get_int("sample_rate"))),
        axis_(o.get_string("shaping") == "sqrt_frequency" ? ShapingAxis::kSqrtFrequency
                                                          : ShapingAxis::kReferenceLinspace) {
    const std::vector<double> snr = o.get_float_list("snr_db");
    const std::vector<double> decay = o.get_float_list("f_decay");
    ranges_.min_snr_db = static_cast<float>(snr[0]);
    ranges_.max_snr_db = static_cast<float>(snr[1]);
    ranges_.min_f_decay = static_cast<float>(decay[0]);
    ranges_.max_f_decay = static_cast<float>(decay[1]);
  }

  Flow process(NodeContext& ctx) override {
    const Item& in = ctx.in(kIn);
    Item out = in;
    const Tensor& x = in.get(field_);
    if (!enabled_) {
      out.set(out_field_, x);
      ctx.emit(kOut, std::move(out));
      return Flow::kContinue;
    }
    if (x.rank() == 0) {
      throw Error(ErrorKind::kData, "item " + std::to_string(ctx.index()) + ": field '" + field_ +
                                        "' is a scalar; expected [..., time]");
    }
    const std::int64_t n = x.dim(x.rank() - 1);
    const std::int64_t rows = n == 0 ? 0 : x.numel() / n;
    Tensor noisy = x.clone();  // inputs are shared: never written in place
    Rng rng = ctx.rng();
    {
      Lease shaper(*this);
      add_colored_noise(noisy.mutable_data<float>(), static_cast<int>(rows), n, rng, shaper.get(),
                        ranges_);
    }
    out.set(out_field_, std::move(noisy));
    ctx.emit(kOut, std::move(out));
    return Flow::kContinue;
  }

 private:
  // A shaper (FFT plan + buffers, not thread-safe) borrowed from the pool for one item.
  class Lease {
   public:
    explicit Lease(ColoredNoise& node) : node_(node) {
      std::lock_guard<std::mutex> lock(node_.mutex_);
      if (!node_.pool_.empty()) {
        shaper_ = std::move(node_.pool_.back());
        node_.pool_.pop_back();
      }
    }
    ~Lease() {
      if (!shaper_) return;
      std::lock_guard<std::mutex> lock(node_.mutex_);
      node_.pool_.push_back(std::move(shaper_));
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ColoredNoiseShaper& get() {
      if (!shaper_) shaper_ = std::make_unique<ColoredNoiseShaper>(node_.sample_rate_, node_.axis_);
      return *shaper_;
    }

   private:
    ColoredNoise& node_;
    std::unique_ptr<ColoredNoiseShaper> shaper_;
  };

  bool enabled_;
  std::string field_;
  std::string out_field_;
  int sample_rate_;
  ShapingAxis axis_;
  ColoredNoiseRanges ranges_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<ColoredNoiseShaper>> pool_;
};

void register_nodes(Registry& registry) {
  // FFTW's planner is shared by every plugin in the process: make it take its own lock before
  // any node plans (registration runs before the graph, on one thread).
  fftwf_make_planner_thread_safe();
  registry.add(make_node_type<ColoredNoise>("augment.colored_noise"));
}

}  // namespace
}  // namespace w2p::augment

W2P_PLUGIN("augment", "0.1.0", w2p::augment::register_nodes)
