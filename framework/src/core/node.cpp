#include "w2p/node.hpp"

namespace w2p {

std::string describe_item(const NodeContext& ctx, const Item* item) {
  std::string text =
      "item " + std::to_string(ctx.index()) + " of epoch " + std::to_string(ctx.epoch());
  if (item != nullptr && item->has("utterance_id")) {
    const Tensor& id = item->get("utterance_id");
    if (id.dtype() == DType::kStr && id.numel() == 1) {
      text += " (utterance_id '" + id.data<std::string>()[0] + "')";
    }
  }
  return text;
}

}  // namespace w2p
