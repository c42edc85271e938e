// w2p-run: validates a pipeline YAML against the loaded plugins, then runs it.
//
// Exit codes: 0 success, 1 a node failed at run time, 2 the pipeline or command line is wrong
// (every error is printed, compiler style), 3 a plugin could not be loaded, 130 interrupted.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "config/pipeline_config.hpp"
#include "graph/pipeline_graph.hpp"
#include "nodes/builtin_nodes.hpp"
#include "nodes/store_reader_node.hpp"
#include "plugin/plugin_catalog.hpp"
#include "run/progress.hpp"
#include "run/runtime.hpp"
#include "w2p/version.hpp"

namespace {

constexpr int kExitRunError = 1;
constexpr int kExitConfig = 2;
constexpr int kExitPlugin = 3;
constexpr int kExitInterrupted = 130;

const char* kUsage = R"(usage: w2p-run [options] PIPELINE.yaml

Runs the pipelines listed under its `stages:` first (each to completion; their stores make
reruns cheap), then validates the pipeline against the loaded plugins and runs it.

options:
  --check               validate only (exit 0 if valid, 2 if not)
  --set NODE.OPTION=V   override a node option (or graph.KEY=V); repeatable
  --var NAME=VALUE      define ${NAME} for the YAML; repeatable
  --run-dir DIR         output directory of the run (default: graph.run_dir or runs/<name>)
  --plugin-path DIR     search DIR for plugins first; repeatable (also W2P_PLUGIN_PATH)
  --threads N           worker threads (same as --set graph.threads=N)
  --resume              continue trainers from their last checkpoint
  --quiet               no progress display
  --version             print the version
  -h, --help            this text
)";

void on_signal(int) { w2p::request_stop(); }

int print_errors(const std::vector<w2p::Error>& errors) {
  for (const auto& e : errors) std::cerr << e.format() << "\n";
  std::cerr << "w2p-run: " << errors.size() << (errors.size() == 1 ? " error" : " errors") << "\n";
  return static_cast<int>(errors.size());
}

int exit_code_for(const std::vector<w2p::Error>& errors) {
  for (const auto& e : errors) {
    if (e.kind() == w2p::ErrorKind::kPlugin) return kExitPlugin;
  }
  for (const auto& e : errors) {
    if (e.kind() != w2p::ErrorKind::kConfig && e.kind() != w2p::ErrorKind::kType) {
      return kExitRunError;
    }
  }
  return kExitConfig;
}

void print_summary(const w2p::RunResult& r) {
  std::fprintf(stderr, "\n%-24s %-26s %10s %10s %10s\n", "node", "type", "items in", "items out",
               "busy");
  for (const auto& n : r.nodes) {
    if (n.skipped) {
      std::fprintf(stderr, "%-24s %-26s %10s %10s %10s\n", n.name.c_str(), n.type.c_str(), "-", "-",
                   "reused");
      continue;
    }
    std::fprintf(stderr, "%-24s %-26s %10llu %10llu %9.2fs\n", n.name.c_str(), n.type.c_str(),
                 static_cast<unsigned long long>(n.items_in),
                 static_cast<unsigned long long>(n.items_out), n.busy_seconds);
  }
  for (const auto& s : r.stores_written) std::fprintf(stderr, "wrote   %s\n", s.c_str());
  for (const auto& s : r.stores_reused) std::fprintf(stderr, "reused  %s\n", s.c_str());
  std::fprintf(stderr, "%s in %s\n", r.ok() ? "done" : "stopped",
               w2p::format_duration(r.seconds).c_str());
}

// How the command line asked to run (shared by a pipeline and its stages).
struct Invocation {
  std::vector<std::string> plugin_paths;
  bool check_only = false;
  w2p::RunOptions run_options;
};

// Loads `pipeline`, runs its stages (depth first, each to completion), then validates and runs
// it. `chain` holds the pipelines that listed it as a stage (to reject stage cycles).
int run_pipeline(const std::string& pipeline, const w2p::ConfigOverrides& overrides,
                 const Invocation& how, std::vector<std::string> chain) {
  w2p::PipelineConfig config;
  try {
    config = w2p::load_pipeline(pipeline, overrides);
  } catch (const w2p::ErrorList& errors) {
    print_errors(errors.errors());
    return exit_code_for(errors.errors()) == kExitRunError ? kExitConfig
                                                           : exit_code_for(errors.errors());
  }
  chain.push_back(config.file);
  for (const auto& stage : config.stages) {
    if (std::find(chain.begin(), chain.end(), stage.pipeline) != chain.end()) {
      print_errors({w2p::Error(w2p::ErrorKind::kConfig,
                               "stage cycle: '" + stage.pipeline + "' is already running")
                        .at(stage.location)});
      return kExitConfig;
    }
    w2p::ConfigOverrides stage_overrides;
    stage_overrides.vars = stage.vars;
    stage_overrides.run_dir = stage.run_dir;
    if (!how.run_options.quiet || how.check_only) {
      std::cerr << "w2p-run: stage " << stage.pipeline << " (of " << config.file << ")\n";
    }
    const int rc = run_pipeline(stage.pipeline, stage_overrides, how, chain);
    if (rc != 0) {
      std::cerr << "w2p-run: stage " << stage.pipeline << " failed; " << config.file
                << " not run\n";
      return rc;
    }
  }
  if (!config.stages.empty() && !how.run_options.quiet) {
    std::cerr << "w2p-run: " << config.file << "\n";
  }

  w2p::PluginCatalog catalog;
  try {
    catalog.add_builtin(w2p::builtin_node_types());
    std::vector<std::string> dirs = how.plugin_paths;
    dirs.insert(dirs.end(), config.graph.plugin_paths.begin(), config.graph.plugin_paths.end());
    catalog.load_search_path(w2p::plugin_search_path(dirs));
  } catch (const w2p::Error& e) {
    print_errors({e});
    return kExitPlugin;
  }

  w2p::PipelineGraph graph;
  try {
    graph = w2p::build_graph(std::move(config), catalog);
  } catch (const w2p::ErrorList& errors) {
    print_errors(errors.errors());
    return exit_code_for(errors.errors());
  }
  if (how.check_only) {
    std::cerr << graph.config.file << ": ok (" << graph.nodes.size() << " nodes, "
              << graph.channels.size() << " channels)\n";
    // What this pipeline would store, for the checks of the pipelines that read it.
    for (const auto& channel : graph.channels) {
      if (!channel.config.store.empty()) w2p::plan_store(channel.config.store, channel.schema);
    }
    return 0;
  }

  const w2p::RunResult result = w2p::run_graph(graph, catalog, how.run_options);
  if (!how.run_options.quiet || !result.ok()) print_summary(result);
  if (!result.errors.empty()) {
    print_errors(result.errors);
    return result.cancelled ? kExitInterrupted : kExitRunError;
  }
  if (result.cancelled) {
    std::cerr << "w2p-run: interrupted; complete stores were kept, unfinished ones stay "
                 "*.partial and resume on the next run\n";
    return kExitInterrupted;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  w2p::ConfigOverrides overrides;
  std::vector<std::string> plugin_paths;
  std::string pipeline;
  bool check_only = false;
  w2p::RunOptions run_options;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= args.size()) {
        std::cerr << "w2p-run: " << name << " needs a value\n" << kUsage;
        std::exit(kExitConfig);
      }
      return args[++i];
    };
    if (a == "-h" || a == "--help") {
      std::cout << kUsage;
      return 0;
    } else if (a == "--version") {
      std::cout << "w2p " << w2p::framework_version() << " (" << w2p::framework_build_id()
                << ", plugin ABI " << W2P_PLUGIN_ABI << ")\n";
      return 0;
    } else if (a == "--check") {
      check_only = true;
    } else if (a == "--quiet" || a == "-q") {
      run_options.quiet = true;
    } else if (a == "--resume") {
      run_options.resume = true;
    } else if (a == "--set") {
      overrides.sets.push_back(value("--set"));
    } else if (a == "--threads") {
      overrides.sets.push_back("graph.threads=" + value("--threads"));
    } else if (a == "--var") {
      const std::string v = value("--var");
      const auto eq = v.find('=');
      if (eq == std::string::npos) {
        std::cerr << "w2p-run: --var expects NAME=VALUE, got '" << v << "'\n";
        return kExitConfig;
      }
      overrides.vars[v.substr(0, eq)] = v.substr(eq + 1);
    } else if (a == "--run-dir") {
      overrides.run_dir = value("--run-dir");
    } else if (a == "--plugin-path") {
      plugin_paths.push_back(value("--plugin-path"));
    } else if (!a.empty() && a[0] == '-') {
      std::cerr << "w2p-run: unknown option '" << a << "'\n" << kUsage;
      return kExitConfig;
    } else if (pipeline.empty()) {
      pipeline = a;
    } else {
      std::cerr << "w2p-run: one pipeline at a time ('" << pipeline << "' and '" << a << "')\n";
      return kExitConfig;
    }
  }
  if (pipeline.empty()) {
    std::cerr << kUsage;
    return kExitConfig;
  }

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const Invocation how{plugin_paths, check_only, run_options};
  return run_pipeline(pipeline, overrides, how, {});
}
