// roomsim.shoebox: simulates one scene (an utterance + a room geometry) with the shoebox
// image-source kernel, and cuts the wav2pos item: 7-channel crop and TDOA labels
// (spec §1.3-1.4). Stateless and thread-safe: the simulator's tables are built once in the
// constructor and only read afterwards, so items run in parallel.
#include <w2p/node.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "roomsim/kernels/fft_convolution.hpp"
#include "roomsim/kernels/shoebox.hpp"
#include "roomsim/kernels/simulate_room.hpp"
#include "roomsim/kernels/wav2pos_labels.hpp"
#include "roomsim/nodes/roomsim_nodes.hpp"

namespace w2p::roomsim {
namespace {

Vec3 vec3_of(const Tensor& t) {
  const double* p = t.data<double>();
  return {p[0], p[1], p[2]};
}

// First non-finite value of a float array, or -1.
std::int64_t first_non_finite(const float* x, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return i;
  }
  return -1;
}

class Shoebox final : public Node {
 public:
  static constexpr const char* kDoc =
      "Shoebox room simulation (image-source method, pyroomacoustics-exact; spec §1.3) of one "
      "scene per item: the dry utterance `audio` f32[?] convolved with the RIR from "
      "`source_pos` to every microphone of `mic_pos` in a room `room_dim` with wall "
      "`absorption` and image order `max_order` (what roomsim.wav2pos_geometry emits). "
      "output=cropped (default) replaces `audio` by the wav2pos item f32[M+1, crop_length]: "
      "channel 0 the dry crop [crop_start, +crop_length), channel 1+m microphone m cut "
      "mic_offset samples later (41 = the reference's QUIRK, 40 with fix_alignment); "
      "`mic_offset` and `crop_start` are stored with every item. output=full adds "
      "`mic_signals` f32[M, ?] (full convolutions) instead. Both add `tdoa` f64[M+1, M+1] "
      "(samples; T[i][0] = |s - m_i| fs / c, spec §1.4). Every other input field is passed "
      "through. Errors name the item: source or microphone outside the room, an utterance "
      "shorter than the crop, a `sample_rate` field that differs from the option, non-finite "
      "audio.";
  static constexpr Port kIn{"scene"};
  static constexpr Port kOut{"item"};

  static std::vector<OptionSpec> options() {
    return {
        OptionSpec::choice("output", {"cropped", "full"}, "cropped")
            .describe("cropped: the wav2pos item audio [M+1, crop_length]; full: the whole "
                      "microphone signals as `mic_signals` [M, ?]"),
        OptionSpec::integer("crop_start", 8000)
            .range(0, 1e9)
            .describe("first sample of the dry crop (0.5 s at 16 kHz)"),
        OptionSpec::integer("crop_length", 16000)
            .range(1, 1e9)
            .describe("samples per channel of the crop (1 s at 16 kHz)"),
        OptionSpec::boolean("fix_alignment", false)
            .describe("cut the microphones at +40 samples (the true filter delay) instead of "
                      "the reference's +41 (QUIRK, spec §1.3)"),
        OptionSpec::integer("sample_rate", 16000)
            .range(1, 1e7)
            .describe("Hz; an input field `sample_rate` must agree"),
        OptionSpec::number("c", kSpeedOfSound).range(1, 1e5).describe("speed of sound, m/s"),
        OptionSpec::boolean("high_pass", false)
            .describe("zero-phase 2nd-order Butterworth high-pass on every RIR (off in wav2pos)"),
        OptionSpec::number("high_pass_cutoff", 10.0)
            .range(1e-3, 1e6)
            .describe("-3 dB point of the RIR high-pass, Hz"),
        OptionSpec::boolean("exact_summation", false)
            .describe("add the images' fractional delays one by one in pyroomacoustics' order "
                      "(bit-identical, ~3x slower) instead of the polyphase grid (float "
                      "rounding)"),
    };
  }

  static Contract declare(const Options& o) {
    const bool cropped = o.get_string("output") == "cropped";
    const std::int64_t length = o.get_int("crop_length");
    const std::int64_t offset = mic_offset(o);
    const Schema in{{
        {"audio", spec(DType::kF32, {"?"}), "dry utterance at sample_rate"},
        {"source_pos", spec(DType::kF64, {3}), "source (x, y, z), metres"},
        {"mic_pos", spec(DType::kF64, {"M", 3}), "microphones [mic, xyz], metres"},
        {"room_dim", spec(DType::kF64, {3}), "room size (x, y, z), metres"},
        {"absorption", spec(DType::kF64, {6}),
         "wall energy absorption, walls x=0, x=Lx, y=0, y=Ly, z=0, z=Lz"},
        {"max_order", spec(DType::kI64), "largest image-source order"},
    }};
    return Contract()
        .input(kIn, in, "scenes: utterance audio + geometry")
        .output_from(
            kOut, kIn,
            [cropped, length, offset](const Schema& s) {
              return output_schema(s, cropped, length, offset);
            },
            "simulated items: the scene's fields, audio cropped (or mic_signals), tdoa")
        .max_concurrency(0);  // stateless; the simulator is read-only
  }

  explicit Shoebox(const Options& o)
      : cropped_(o.get_string("output") == "cropped"),
        sample_rate_(static_cast<int>(o.get_int("sample_rate"))),
        c_(o.get_float("c")),
        simulator_(rir_options(o)) {
    crop_.start = o.get_int("crop_start");
    crop_.length = o.get_int("crop_length");
    crop_.fix_alignment = o.get_bool("fix_alignment");
  }

  Flow process(NodeContext& ctx) override {
    const Item& scene = ctx.in(kIn);
    const Tensor& audio = scene.get("audio");
    const auto n = audio.numel();
    const float* dry = audio.data<float>();
    check_input(ctx, scene, dry, n);

    ShoeboxRoom room;
    room.size = vec3_of(scene.get("room_dim"));
    const double* a = scene.get("absorption").data<double>();
    std::copy(a, a + kNumWalls, room.absorption.begin());
    room.max_order = static_cast<int>(scene.get("max_order").item<std::int64_t>());
    room.sample_rate = sample_rate_;
    room.c = c_;
    const Vec3 source = vec3_of(scene.get("source_pos"));
    const Tensor& mic_pos = scene.get("mic_pos");
    std::vector<Vec3> mics(static_cast<std::size_t>(mic_pos.dim(0)));
    for (std::size_t m = 0; m < mics.size(); ++m) {
      std::copy(mic_pos.data<double>() + 3 * m, mic_pos.data<double>() + 3 * m + 3,
                mics[m].begin());
    }

    Item out = scene;
    out.set("tdoa", Tensor::from_vector(tdoa_matrix(source, mics, sample_rate_, c_),
                                        {mic_pos.dim(0) + 1, mic_pos.dim(0) + 1}));
    const auto channels = static_cast<std::int64_t>(mics.size());
    try {
      if (cropped_) {
        out.set("audio", Tensor::from_vector(simulate_crop(room, source, mics, dry, n),
                                             {channels + 1, crop_.length}));
        out.set("mic_offset", Tensor::scalar<std::int64_t>(crop_.mic_offset()));
        out.set("crop_start", Tensor::scalar<std::int64_t>(crop_.start));
      } else {
        MicSignals sim = simulator_.simulate(room, source, mics, dry, static_cast<std::size_t>(n));
        out.set("mic_signals", Tensor::from_vector(sim.samples, {sim.channels, sim.length}));
      }
    } catch (const std::invalid_argument& e) {  // the kernels' messages name the bad value
      throw Error(ErrorKind::kData, describe_item(ctx, &scene) + ": " + e.what())
          .note("room_dim " + vec3_text(room.size) + ", source_pos " + vec3_text(source));
    }
    const Tensor& result = cropped_ ? out.get("audio") : out.get("mic_signals");
    const std::int64_t bad = first_non_finite(result.data<float>(), result.numel());
    if (bad >= 0) {  // NaN/Inf never reach a store
      throw Error(ErrorKind::kData, describe_item(ctx, &scene) +
                                        ": the simulation produced a non-finite sample at " +
                                        std::to_string(bad));
    }
    ctx.emit(kOut, std::move(out));
    return Flow::kContinue;
  }

 private:
  // The wav2pos item audio: what ShoeboxSimulator::simulate + crop_item_audio give, computed
  // on the only dry samples the crop can see. Microphone samples in [crop_start + 40,
  // crop_end) depend on dry[crop_start + 40 - (taps - 1), crop_end) only (causal FIR), so the
  // convolution runs over that window: equal to the full simulation up to FFT rounding (~1e-7
  // of the signal scale; CroppedItemsCutTheFullSimulation checks it). The window spans both
  // alignments (+40 and +41), so the two are the same simulation cut one sample apart.
  std::vector<float> simulate_crop(const ShoeboxRoom& room, const Vec3& source,
                                   const std::vector<Vec3>& mics, const float* dry,
                                   std::int64_t n) const {
    const std::vector<std::vector<float>> rirs = simulator_.compute_rirs(room, source, mics);
    std::int64_t taps = 1;
    for (const auto& h : rirs) taps = std::max(taps, static_cast<std::int64_t>(h.size()));
    const std::int64_t crop_end = crop_.start + crop_.global_delay + 1 + crop_.length;
    const std::int64_t first = std::max<std::int64_t>(
        0, std::min(crop_.start, crop_.start + crop_.global_delay - (taps - 1)));
    const std::int64_t last = std::min(n, crop_end);
    const std::vector<float> window =
        convolve_full_many(dry + first, static_cast<std::size_t>(last - first), rirs,
                           static_cast<std::size_t>(crop_end - first));
    CropOptions shifted = crop_;
    shifted.start -= first;
    return crop_item_audio(dry + first, static_cast<std::size_t>(n - first), window.data(),
                           static_cast<std::int64_t>(rirs.size()), crop_end - first, shifted);
  }

  static std::int64_t mic_offset(const Options& o) {
    CropOptions crop;
    crop.fix_alignment = o.get_bool("fix_alignment");
    return crop.mic_offset();
  }

  static RirOptions rir_options(const Options& o) {
    RirOptions r;
    r.high_pass = o.get_bool("high_pass");
    r.high_pass_cutoff_hz = o.get_float("high_pass_cutoff");
    r.exact_summation = o.get_bool("exact_summation");
    return r;
  }

  static Schema output_schema(const Schema& in, bool cropped, std::int64_t length,
                              std::int64_t offset) {
    Schema out = in;
    // M is known when the geometry's microphone count is fixed (6 for wav2pos scenes).
    Dim mics = Dim::sym("M");
    Dim channels = Dim::sym("K");
    if (const FieldSpec* m = in.find("mic_pos");
        m != nullptr && !m->spec.dims.empty() && m->spec.dims[0].is_fixed()) {
      mics = m->spec.dims[0];
      channels = Dim::fixed(mics.size + 1);
    }
    for (const char* f : {"tdoa", "mic_offset", "crop_start", "mic_signals"}) out.remove(f);
    if (cropped) {
      out.remove("audio");
      out.fields.push_back(
          {"audio", TensorSpec{DType::kF32, {channels, Dim::fixed(length)}},
           "channel 0: dry source crop [crop_start, crop_start + " + std::to_string(length) +
               "); channel 1+m: microphone m from crop_start + " + std::to_string(offset) +
               (offset == 41 ? " (reference QUIRK: one sample past the 40-sample filter delay)"
                             : " (fix_alignment: the filter delay)")});
      out.fields.push_back({"mic_offset", spec(DType::kI64),
                            "microphone crops start this many samples after the dry crop"});
      out.fields.push_back(
          {"crop_start", spec(DType::kI64), "first sample of the dry crop in the utterance"});
    } else {
      out.fields.push_back({"mic_signals", TensorSpec{DType::kF32, {mics, Dim::ragged()}},
                            "full microphone signals (dry * RIR, zero-padded to even length)"});
    }
    out.fields.push_back({"tdoa", TensorSpec{DType::kF64, {channels, channels}},
                          "TOA/TDOA matrix in samples, channel 0 = source: T[a][b] = toa_a - "
                          "toa_b, toa_i = |s - m_i| fs / c"});
    return out;
  }

  void check_input(const NodeContext& ctx, const Item& scene, const float* dry,
                   std::int64_t n) const {
    if (scene.has("sample_rate")) {
      const Tensor& fs = scene.get("sample_rate");
      std::int64_t rate = -1;
      if (fs.numel() == 1 && fs.dtype() == DType::kI64) rate = fs.item<std::int64_t>();
      if (fs.numel() == 1 && fs.dtype() == DType::kI32) rate = fs.item<std::int32_t>();
      if (rate != sample_rate_) {
        throw Error(ErrorKind::kData, describe_item(ctx, &scene) + ": utterance sample rate " +
                                          std::to_string(rate) +
                                          " Hz differs from the "
                                          "simulator's " +
                                          std::to_string(sample_rate_) + " Hz")
            .note("set option sample_rate, or resample the corpus");
      }
    }
    if (cropped_) {
      const std::int64_t need = crop_.start + crop_.length;
      if (n < need) {
        std::ostringstream msg;
        msg << describe_item(ctx, &scene) << ": utterance has " << n << " samples ("
            << static_cast<double>(n) / sample_rate_ << " s), the crop needs " << need
            << " (crop_start " << crop_.start << " + crop_length " << crop_.length << ")";
        throw Error(ErrorKind::kData, msg.str())
            .note("filter short utterances out upstream, or lower crop_start/crop_length");
      }
    }
    const std::int64_t bad = first_non_finite(dry, n);
    if (bad >= 0) {
      throw Error(ErrorKind::kData, describe_item(ctx, &scene) + ": utterance sample " +
                                        std::to_string(bad) + " is not finite");
    }
  }

  bool cropped_;
  int sample_rate_;
  double c_;
  CropOptions crop_;
  ShoeboxSimulator simulator_;
};

}  // namespace

NodeType shoebox_node_type() { return make_node_type<Shoebox>("roomsim.shoebox"); }

}  // namespace w2p::roomsim
