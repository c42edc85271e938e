// roomsim.wav2pos_geometry: the wav2pos scene distribution (spec §1.2-1.3) as a node. Each
// input item (an utterance) becomes `repeats` scenes: the input's fields passed through, plus
// the room, the source, the six face microphones and the wall absorption / image order the
// simulator needs. Kept apart from the simulator so that YAML can swap either one.
#include <w2p/node.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "roomsim/kernels/shoebox.hpp"
#include "roomsim/kernels/wav2pos_geometry.hpp"
#include "roomsim/nodes/roomsim_nodes.hpp"

namespace w2p::roomsim {
namespace {

constexpr const char* kMicStream = "/microphones";  // suffix of the microphones' generator name

Schema scene_fields() {
  return Schema{{
      {"room_dim", spec(DType::kF64, {3}), "room size (x, y, z), metres"},
      {"source_pos", spec(DType::kF64, {3}), "source position (x, y, z), metres"},
      {"mic_pos", spec(DType::kF64, {6, 3}),
       "microphone positions [mic, xyz], metres; mic i on face floor, ceiling, y=0, x=0, x=Lx, "
       "y=Ly"},
      {"absorption", spec(DType::kF64, {6}),
       "wall energy absorption, walls x=0, x=Lx, y=0, y=Ly, z=0, z=Lz (1 = anechoic)"},
      {"max_order", spec(DType::kI64), "largest image-source reflection order (0 = anechoic)"},
      {"t60", spec(DType::kF64), "requested reverberation time, s (0 = anechoic)"},
      {"utterance_index", spec(DType::kI64), "position of the utterance in its epoch"},
      {"repeat", spec(DType::kI64), "which of the utterance's `repeats` scenes this is"},
  }};
}

class Wav2posGeometry final : public Node {
 public:
  static constexpr const char* kDoc =
      "wav2pos scenes (spec §1.2): every input item (an utterance; all its fields are passed "
      "through) becomes `repeats` scenes in a shoebox room of size `room_dim`. Microphones: one "
      "uniform on each face (floor, ceiling, y=0, x=0, x=Lx, y=Ly), fixed per utterance index "
      "for the whole run (drawn from the generator of (seed, '<node>/microphones', 0, index)). "
      "Source: uniform in the room shrunk by `source_margin`, redrawn every epoch from the "
      "item's generator (with `deterministic`, from epoch 0's, so every epoch repeats the same "
      "scenes: the test split). Each scene is anechoic with probability `anechoic_prob` "
      "(absorption 1, order 0), else T60 ~ U[t60] with absorption and order from inverse "
      "Sabine. Five uniforms are drawn per scene whatever the options (source x, y, z, the "
      "anechoic choice, T60), so anechoic and reverberant runs share their geometry.";
  static constexpr Port kIn{"utterance"};
  static constexpr Port kOut{"scene"};

  static std::vector<OptionSpec> options() {
    return {
        OptionSpec::integer("repeats", 10)
            .range(1, 1e6)
            .describe("scenes per input item (new source, same microphones)"),
        OptionSpec::number("anechoic_prob", 1.0)
            .range(0, 1)
            .describe("probability that a scene is anechoic (the reference's default 1.0)"),
        OptionSpec::float_list("t60", std::vector<double>{0.3, 0.4})
            .size(2)
            .range(1e-3, 100)
            .describe("[min, max] of the uniform reverberation time of reverberant scenes, s"),
        OptionSpec::float_list("room_dim", std::vector<double>{5.0, 5.0, 2.0})
            .size(3)
            .range(1e-3, 1e4)
            .describe("room size (x, y, z), metres"),
        OptionSpec::float_list("source_margin", std::vector<double>{0.5, 0.5, 0.25})
            .size(3)
            .range(0, 1e4)
            .describe("distance kept between the source and both walls of each axis, metres"),
        OptionSpec::boolean("deterministic", false)
            .describe("same scenes in every epoch (the reference's test split)"),
        OptionSpec::number("c", kSpeedOfSound)
            .range(1, 1e5)
            .describe("speed of sound for inverse Sabine, m/s (keep equal to the simulator's)"),
    };
  }

  static Contract declare(const Options& o) {
    validate(o);
    return Contract()
        .input_any(kIn, "utterances (any fields; passed through to every scene)")
        .output_from(
            kOut, kIn,
            [](const Schema& in) {
              Schema out = in;
              for (const FieldSpec& f : scene_fields().fields) {
                out.remove(f.name);
                out.fields.push_back(f);
              }
              return out;
            },
            "`repeats` scenes per utterance: its fields + room_dim, source_pos, mic_pos, "
            "absorption, max_order, t60, utterance_index, repeat")
        .cardinality(Cardinality::kAny);  // several scenes per input
  }

  explicit Wav2posGeometry(const Options& o)
      : repeats_(o.get_int("repeats")),
        anechoic_prob_(o.get_float("anechoic_prob")),
        t60_(o.get_float_list("t60")),
        room_(vec3_option(o, "room_dim")),
        deterministic_(o.get_bool("deterministic")),
        c_(o.get_float("c")) {
    const Vec3 m = vec3_option(o, "source_margin");
    margins_.low = m;
    margins_.high = m;
  }

  Flow process(NodeContext& ctx) override {
    const Item& utterance = ctx.in(kIn);
    const RunInfo& run = ctx.run();
    // Microphones belong to the utterance index, not to the epoch; their own stream name keeps
    // them independent of the source draws (ctx.rng() of epoch 0 is for_item(seed, node, 0, i)).
    Rng mic_rng = Rng::for_item(run.seed, run.node_name + kMicStream, 0, ctx.index());
    std::array<double, kMicrophoneUniforms> mu{};
    for (double& u : mu) u = mic_rng.uniform();
    const std::array<Vec3, 6> mics = face_microphones_from_uniforms(room_, mu);
    Tensor mic_pos = Tensor::zeros(DType::kF64, {6, 3});
    for (std::size_t m = 0; m < 6; ++m) {
      std::copy(mics[m].begin(), mics[m].end(), mic_pos.mutable_data<double>() + 3 * m);
    }

    Rng rng = deterministic_ ? Rng::for_item(run.seed, run.node_name, 0, ctx.index()) : ctx.rng();
    for (std::int64_t r = 0; r < repeats_; ++r) {
      const std::array<double, 3> su{rng.uniform(), rng.uniform(), rng.uniform()};
      const double u_anechoic = rng.uniform();
      const double u_t60 = rng.uniform();
      const Vec3 source = source_from_uniforms(room_, margins_, su);
      const bool anechoic = u_anechoic < anechoic_prob_;
      double t60 = 0.0;
      double absorption = 1.0;
      std::int64_t order = 0;
      if (!anechoic) {
        t60 = t60_[0] + u_t60 * (t60_[1] - t60_[0]);
        const SabineParameters p = inverse_sabine(t60, room_, c_);
        absorption = p.energy_absorption;
        order = p.max_order;
      }
      Item scene = utterance;  // tensors are shared, not copied
      scene.set("room_dim", Tensor::from_vector(std::vector<double>(room_.begin(), room_.end())));
      scene.set("source_pos",
                Tensor::from_vector(std::vector<double>(source.begin(), source.end())));
      scene.set("mic_pos", mic_pos);
      scene.set("absorption", Tensor::from_vector(std::vector<double>(6, absorption)));
      scene.set("max_order", Tensor::scalar<std::int64_t>(order));
      scene.set("t60", Tensor::scalar<double>(t60));
      scene.set("utterance_index",
                Tensor::scalar<std::int64_t>(static_cast<std::int64_t>(ctx.index())));
      scene.set("repeat", Tensor::scalar<std::int64_t>(r));
      ctx.emit(kOut, std::move(scene));
    }
    return Flow::kContinue;
  }

 private:
  // Everything that can be wrong with the options, before the run (w2p-run --check reports it).
  static void validate(const Options& o) {
    const Vec3 room = vec3_option(o, "room_dim");
    const Vec3 margin = vec3_option(o, "source_margin");
    try {
      validate_source_margins(room, SourceMargins{margin, margin});
    } catch (const std::invalid_argument& e) {
      throw Error(ErrorKind::kConfig, std::string("option 'source_margin': ") + e.what())
          .note("room_dim is " + vec3_text(room) + "; each margin must be below half the size");
    }
    const std::vector<double> t60 = o.get_float_list("t60");
    if (t60[0] > t60[1]) {
      throw Error(ErrorKind::kConfig, "option 't60': minimum " + std::to_string(t60[0]) +
                                          " s is above maximum " + std::to_string(t60[1]) + " s")
          .note("expected [min, max] with min <= max, e.g. [0.3, 0.4]");
    }
    if (o.get_float("anechoic_prob") < 1.0) {
      try {  // the shortest T60 needs the largest absorption: if it is reachable, all are
        inverse_sabine(t60[0], room, o.get_float("c"));
      } catch (const std::invalid_argument& e) {
        throw Error(ErrorKind::kConfig, std::string("option 't60': ") + e.what())
            .note("room_dim is " + vec3_text(room) + "; raise t60 or make the room smaller");
      }
    }
  }

  std::int64_t repeats_;
  double anechoic_prob_;
  std::vector<double> t60_;
  Vec3 room_;
  SourceMargins margins_;
  bool deterministic_;
  double c_;
};

}  // namespace

NodeType wav2pos_geometry_node_type() {
  return make_node_type<Wav2posGeometry>("roomsim.wav2pos_geometry");
}

}  // namespace w2p::roomsim
