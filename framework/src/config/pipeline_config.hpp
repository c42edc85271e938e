// The pipeline YAML, parsed into plain structs that remember where every value came from.
//
// Syntax (see README "Pipeline YAML"):
//   include: [common.yaml]            # merged first; this file's values win
//   vars: {corpus: data/corpus}       # ${corpus} anywhere in a string; --var overrides
//   graph: {seed: 0, threads: 2, max_in_flight: 64, epochs: 1, run_dir: runs/x, plugin_paths: []}
//   channels: {samples: {store: samples.h5, compression: 4, chunk_items: 64}}
//   nodes:
//     - {name: src, type: core.tensor_source, options: {...}, outputs: {out: samples}, epochs: 3}
//   stages:                           # pipelines run to completion before this one
//     - simulate.yaml
//     - {pipeline: pretrain_ngcc.yaml, vars: {epochs: 2}, run_dir: ../runs/x}
// `seed` may also be written at the top level. Relative option paths resolve against the file
// that wrote them; relative store paths against the run directory.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "w2p/error.hpp"

namespace w2p {

/// One `key: value` under a node's `options`, with the file it came from.
struct OptionEntry {
  std::string key;
  YAML::Node value;
  SourceLocation key_location;
  SourceLocation value_location;
  std::string base_dir;  ///< directory relative paths are resolved against
};

/// `port: channel` under `inputs` or `outputs`.
struct PortBinding {
  std::string port;
  std::string channel;
  SourceLocation location;
};

struct NodeConfig {
  std::string name;
  std::string type;
  SourceLocation location;  ///< the node's mapping
  SourceLocation type_location;
  std::vector<OptionEntry> options;
  std::vector<PortBinding> inputs;
  std::vector<PortBinding> outputs;
  std::optional<std::int64_t> epochs;  ///< how often a source repeats its stream
  SourceLocation epochs_location;
};

struct ChannelConfig {
  std::string name;
  SourceLocation location;
  std::string store;  ///< absolute path of the HDF5 store, empty = in memory only
  int compression = 0;
  std::int64_t chunk_items = 64;
};

struct GraphSettings {
  std::uint64_t seed = 0;
  int threads = 0;  ///< 0 = all cores
  std::int64_t max_in_flight = 64;
  std::int64_t epochs = 1;
  std::string run_dir;  ///< absolute
  std::vector<std::string> plugin_paths;
};

/// A pipeline that runs to completion before this one (its stores make reruns cheap): e.g. the
/// simulation whose stored data set this pipeline's readers open.
struct StageConfig {
  std::string pipeline;                     ///< absolute path of its YAML
  std::map<std::string, std::string> vars;  ///< its --var values (substituted here)
  std::string run_dir;                      ///< its --run-dir (absolute), empty = its own
  SourceLocation location;
};

struct PipelineConfig {
  std::string file;                 ///< absolute path of the top-level YAML
  std::vector<StageConfig> stages;  ///< in order, before this pipeline
  GraphSettings graph;
  std::vector<NodeConfig> nodes;
  std::map<std::string, ChannelConfig> channels;  ///< only channels with a `channels:` entry
  std::map<std::string, std::string> vars;
  const NodeConfig* find_node(const std::string& name) const;
};

/// What the command line adds to a YAML file.
struct ConfigOverrides {
  std::vector<std::string> sets;  ///< "node.option=value", "graph.key=value"
  std::map<std::string, std::string> vars;
  std::string run_dir;  ///< --run-dir (absolute or relative to the working directory)
};

/// Parses, includes, substitutes and applies overrides. Throws ErrorList with every problem
/// found (syntax errors stop at the first, since the rest of that file cannot be read).
PipelineConfig load_pipeline(const std::string& path, const ConfigOverrides& overrides = {});

/// Location of a YAML node in `file` (1-based line and column).
SourceLocation location_of(const YAML::Node& node, const std::string& file);

/// Canonical one-line rendering of a YAML value (for hashes and messages).
std::string canonical_yaml(const YAML::Node& node);

}  // namespace w2p
