// A validated pipeline: node types resolved, options typed, contracts declared, ports wired to
// channels, schemas checked across every connection. Built before any node is created.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/pipeline_config.hpp"
#include "w2p/contract.hpp"
#include "w2p/options.hpp"

namespace w2p {

class PluginCatalog;
class RegisteredNodeType;

struct GraphChannel {
  std::string name;
  int producer = -1;  ///< node index
  std::string producer_port;
  Schema schema;
  struct Consumer {
    int node;
    std::string port;
    bool side;
    std::string rename_from;  ///< single-field port reading a differently named field
  };
  std::vector<Consumer> consumers;
  ChannelConfig config;       ///< store settings (store empty = memory only)
  std::string upstream_hash;  ///< hash of everything that determines this channel's content
};

struct GraphNode {
  std::string name;
  const RegisteredNodeType* type = nullptr;
  Options options;
  Contract contract;
  SourceLocation location;
  std::vector<std::string> stream_ports;  ///< connected stream inputs, in contract order
  std::vector<int> stream_channels;       ///< channel per stream_ports entry
  std::vector<std::string> side_ports;
  std::vector<int> side_channels;
  std::map<std::string, int> outputs;  ///< connected output port -> channel
  std::int64_t epochs = 1;  ///< sources: how often the stream repeats; others: their stream's
};

struct PipelineGraph {
  PipelineConfig config;
  std::vector<GraphNode> nodes;
  std::vector<GraphChannel> channels;
  std::vector<int> order;  ///< nodes, producers before consumers
  std::string config_hash;
  int find_channel(const std::string& name) const;
};

/// Validates `config` against the node types in `catalog`; throws ErrorList with every error.
PipelineGraph build_graph(PipelineConfig config, const PluginCatalog& catalog);

/// Converts one YAML option value against its declaration (used by build_graph and tests).
/// Returns false and appends to `errors` when the value does not fit.
bool convert_option(const OptionSpec& spec, const OptionEntry& entry, const std::string& node,
                    const std::string& type, OptionValue* out, std::vector<Error>* errors);

/// 64-bit FNV-1a as 16 hex digits: stable across runs and machines.
std::string stable_hash(const std::string& text);

}  // namespace w2p
