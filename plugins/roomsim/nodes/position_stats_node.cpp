// roomsim.position_stats: per-axis mean and standard deviation of a position field over a whole
// stream: the normalisation constants mu, sigma of the wav2pos model (spec §2), computed from the
// training scenes as they are stored.
#include <w2p/node.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "roomsim/nodes/roomsim_nodes.hpp"

namespace w2p::roomsim {
namespace {

class PositionStats final : public Node {
 public:
  static constexpr const char* kDoc =
      "Per-axis mean and standard deviation (unbiased, n - 1, as torch.std) of the f64[3] field "
      "`field` over every item of the stream (all epochs), emitted once at the end as `mean` "
      "and `std` (f64[3]) with the item `count`: the position normaliser's mu and sigma "
      "(spec §2). Sums in double, Welford's update.";
  static constexpr Port kIn{"in"};
  static constexpr Port kOut{"stats"};

  static std::vector<OptionSpec> options() {
    return {OptionSpec::string("field", "source_pos").describe("f64[3] position field")};
  }
  static Contract declare(const Options& o) {
    return Contract()
        .input(kIn, Schema{{FieldSpec{o.get_string("field"), spec(DType::kF64, {3}), "positions"}}},
               "items with positions")
        .output(kOut,
                Schema{{{"mean", spec(DType::kF64, {3}), "per-axis mean, metres"},
                        {"std", spec(DType::kF64, {3}), "per-axis unbiased std, metres"},
                        {"count", spec(DType::kI64), "items"}}},
                "one item at the end of the stream")
        .cardinality(Cardinality::kAny);
  }
  explicit PositionStats(const Options& o) : field_(o.get_string("field")) {}

  Flow process(NodeContext& ctx) override {
    const double* p = ctx.in(kIn).get(field_).data<double>();
    ++count_;
    for (int d = 0; d < 3; ++d) {
      const double delta = p[d] - mean_[d];
      mean_[d] += delta / static_cast<double>(count_);
      m2_[d] += delta * (p[d] - mean_[d]);
    }
    return Flow::kContinue;
  }
  void finish(NodeContext& ctx) override {
    if (count_ < 2) {
      throw Error(ErrorKind::kData,
                  "position statistics need at least 2 items, got " + std::to_string(count_));
    }
    std::vector<double> sd(3);
    for (int d = 0; d < 3; ++d) sd[d] = std::sqrt(m2_[d] / static_cast<double>(count_ - 1));
    ctx.emit(kOut,
             Item{{"mean", Tensor::from_vector(std::vector<double>(mean_, mean_ + 3))},
                  {"std", Tensor::from_vector(sd)},
                  {"count", Tensor::scalar<std::int64_t>(static_cast<std::int64_t>(count_))}});
  }

 private:
  std::string field_;
  std::uint64_t count_ = 0;
  double mean_[3] = {0, 0, 0};
  double m2_[3] = {0, 0, 0};
};

}  // namespace

NodeType position_stats_node_type() {
  return make_node_type<PositionStats>("roomsim.position_stats");
}

}  // namespace w2p::roomsim
