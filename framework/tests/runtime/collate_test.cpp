// core.batch / core.unbatch collation: ragged fields are padded and restored exactly.
#include <gtest/gtest.h>

#include "nodes/builtin_nodes.hpp"

namespace w2p {
namespace {

TEST(Collate, RaggedFieldsArePaddedAndRestored) {
  std::vector<Item> items;
  for (std::int64_t n : {3, 5, 1}) {
    std::vector<float> v;
    for (std::int64_t i = 0; i < 2 * n; ++i) v.push_back(static_cast<float>(10 * n + i));
    items.push_back(Item{{"audio", Tensor::from_vector(v, {2, n})},
                         {"id", Tensor::scalar(std::string("u") + std::to_string(n))},
                         {"pos", Tensor::from_vector(std::vector<double>{1.0 * n, 2, 3})}});
  }
  Schema schema{{{"audio", TensorSpec{DType::kF32, {Dim::fixed(2), Dim::ragged()}}, ""},
                 {"id", spec(DType::kStr), ""},
                 {"pos", spec(DType::kF64, {3}), ""}}};
  const Item batch = collate(items, schema);
  EXPECT_EQ(batch.get("audio").shape(), (Shape{3, 2, 5}));
  EXPECT_EQ(batch.get("audio_shape").to_vector<std::int64_t>(),
            (std::vector<std::int64_t>{2, 3, 2, 5, 2, 1}));
  EXPECT_EQ(batch.get("pos").shape(), (Shape{3, 3}));
  EXPECT_FALSE(batch.has("pos_shape"));
  // Padding is zero: item 0 (length 3) at [0, 1, 3..4].
  EXPECT_EQ(batch.get("audio").data<float>()[1 * 5 + 3], 0.0f);
  EXPECT_EQ(batch.get("audio").data<float>()[1 * 5 + 2], 35.0f);
  for (std::int64_t i = 0; i < 3; ++i) {
    const Item back = uncollate(batch, i);
    for (const auto& name : {"audio", "id", "pos"}) {
      EXPECT_TRUE(back.get(name).equals(items[static_cast<std::size_t>(i)].get(name)))
          << name << " of item " << i;
    }
    EXPECT_FALSE(back.has("audio_shape"));
  }
}

TEST(Collate, ScalarsStackIntoVectors) {
  const Item batch = collate({Item{{"t", Tensor::scalar(1.5)}}, Item{{"t", Tensor::scalar(2.5)}}},
                             Schema{{{"t", spec(DType::kF64), ""}}});
  EXPECT_EQ(batch.get("t").to_vector<double>(), (std::vector<double>{1.5, 2.5}));
  EXPECT_EQ(uncollate(batch, 1).get("t").item<double>(), 2.5);
}

}  // namespace
}  // namespace w2p
