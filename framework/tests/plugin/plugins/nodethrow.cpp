// Node types whose declare() and create() throw, one with an exception type defined here (its
// type_info and message live in this library).
#include <stdexcept>
#include <string>

#include "w2p/plugin.hpp"

namespace {

class PluginOwnError : public std::exception {
 public:
  explicit PluginOwnError(std::string text) : text_(std::move(text)) {}
  const char* what() const noexcept override { return text_.c_str(); }

 private:
  std::string text_;
};

w2p::NodeType throwing_type() {
  w2p::NodeType t;
  t.id = "nodethrow.bad";
  t.doc = "declare() and create() throw.";
  t.declare = [](const w2p::Options&) -> w2p::Contract {
    throw PluginOwnError("microphone layout " + std::string("unknown"));
  };
  t.create = [](const w2p::Options&) -> std::unique_ptr<w2p::Node> {
    throw w2p::Error(w2p::ErrorKind::kConfig, "option 'room' is invalid").note("expected a box");
  };
  return t;
}

void register_nodes(w2p::Registry& registry) { registry.add(throwing_type()); }

}  // namespace

W2P_PLUGIN("nodethrow", "0.0.1", register_nodes)
