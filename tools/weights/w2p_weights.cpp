// w2p-weights: inspects, converts, checks and compares model weight files: PyTorch's torch.save
// state_dict (.pt, zip format: what the reference and our trainers write) and the HDF5 layout of
// the golden fixtures (.h5: one dataset per key under /state_dict).
//
// Exit codes: 0 ok, 1 the check or comparison found a difference, 2 bad command line or file.
#include <torch/types.h>

#include <cstdint>
#include <cstdio>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "ngcc/model/ngcc_phat.hpp"
#include "torch_common/state_dict.hpp"
#include "torch_common/weights_io.hpp"
#include "wav2pos/model/wav2pos.hpp"

namespace {

namespace tc = w2p::torch_common;

constexpr int kExitDifferent = 1;
constexpr int kExitUsage = 2;

const char* kUsage = R"(usage: w2p-weights COMMAND ...

  inspect FILE [--json]        keys, shapes, dtypes and parameter count
  convert IN OUT               .pt (torch.save) <-> .h5 (fixture layout), by extension;
          [--strip-prefix P]   drop P from every key that starts with it (e.g. "ngcc.")
          [--add-prefix P]     put P before every key
  check FILE --model M         do FILE's keys and shapes fit model M (ngcc | wav2pos)?
          [--max-tau N] [--channels C] [--sinc-kernel K]
          [--embed-dim E] [--depth D] [--heads H]
                               architecture options (defaults: the reference's; ngcc max_tau
                               342, wav2pos's internal NGCC 314)
  diff A B [--tolerance T]     largest |a - b| per key; exit 1 if a key or shape differs or
                               a value differs by more than T (default 0)

FILE formats are chosen by extension: .h5/.hdf5 = HDF5 layout, anything else = torch.save.
)";

bool is_hdf5(const std::string& path) {
  const auto dot = path.rfind('.');
  const std::string ext = dot == std::string::npos ? "" : path.substr(dot);
  return ext == ".h5" || ext == ".hdf5";
}

tc::StateDict read(const std::string& path) {
  return is_hdf5(path) ? tc::read_hdf5_state_dict(path) : tc::read_torch_state_dict(path);
}

void write(const std::string& path, const tc::StateDict& state) {
  if (is_hdf5(path)) {
    tc::write_hdf5_state_dict(path, state);
  } else {
    tc::write_torch_state_dict(path, state);
  }
}

std::string shape(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

int inspect(const std::string& path, bool json) {
  const tc::StateDict state = read(path);
  int64_t total = 0;
  for (const auto& [k, t] : state) total += t.numel();
  if (json) {
    std::cout << "{\"file\": \"" << json_escape(path) << "\", \"format\": \""
              << (is_hdf5(path) ? "hdf5" : "torch.save") << "\", \"values\": " << total
              << ", \"tensors\": [";
    for (size_t i = 0; i < state.size(); ++i) {
      const auto& [k, t] = state[i];
      std::cout << (i ? ", " : "") << "{\"key\": \"" << json_escape(k)
                << "\", \"shape\": " << shape(t) << ", \"dtype\": \""
                << c10::toString(t.scalar_type()) << "\"}";
    }
    std::cout << "]}\n";
    return 0;
  }
  std::printf("%s: %s, %zu tensors, %lld values\n", path.c_str(),
              is_hdf5(path) ? "HDF5 layout" : "torch.save zip", state.size(),
              static_cast<long long>(total));
  for (const auto& [k, t] : state) {
    std::printf("  %-56s %-18s %s\n", k.c_str(), shape(t).c_str(), c10::toString(t.scalar_type()));
  }
  return 0;
}

int convert(const std::string& in, const std::string& out, const std::string& strip,
            const std::string& add) {
  tc::StateDict state = read(in);
  for (auto& [k, t] : state) {
    if (!strip.empty() && k.rfind(strip, 0) == 0) k = k.substr(strip.size());
    k = add + k;
  }
  write(out, state);
  std::printf("%s -> %s (%zu tensors)\n", in.c_str(), out.c_str(), state.size());
  return 0;
}

int check(const std::string& path, const std::string& model,
          const std::map<std::string, int64_t>& opt) {
  auto get = [&](const std::string& k, int64_t def) {
    const auto it = opt.find(k);
    return it == opt.end() ? def : it->second;
  };
  tc::StateDict expected;
  if (model == "ngcc") {
    w2p::ngcc::NgccPhatConfig c;
    c.max_tau = get("max-tau", 342);
    c.num_channels = get("channels", 128);
    c.sinc_kernel = get("sinc-kernel", 1023);
    expected = tc::state_dict(*w2p::ngcc::MaskedNgccPhat(c));
  } else if (model == "wav2pos") {
    w2p::wav2pos::Wav2PosConfig c;
    c.ngcc_max_tau = get("max-tau", 314);
    c.ngcc_num_channels = get("channels", 128);
    c.ngcc_sinc_kernel = get("sinc-kernel", 1023);
    c.embed_dim = c.decoder_embed_dim = get("embed-dim", 256);
    c.depth = c.decoder_depth = get("depth", 4);
    c.num_heads = c.decoder_num_heads = get("heads", 4);
    expected = tc::state_dict(*w2p::wav2pos::Wav2Pos(c));
  } else {
    std::cerr << "w2p-weights: unknown model '" << model << "' (expected ngcc or wav2pos)\n";
    return kExitUsage;
  }
  const auto have = tc::to_map(read(path));
  int problems = 0;
  std::set<std::string> seen;
  for (const auto& [k, t] : expected) {
    seen.insert(k);
    const auto it = have.find(k);
    if (it == have.end()) {
      std::printf("missing    %s %s\n", k.c_str(), shape(t).c_str());
      ++problems;
    } else if (it->second.sizes() != t.sizes()) {
      std::printf("shape      %s: model %s, file %s\n", k.c_str(), shape(t).c_str(),
                  shape(it->second).c_str());
      ++problems;
    }
  }
  for (const auto& [k, t] : have) {
    if (seen.count(k) == 0) {
      std::printf("unexpected %s %s\n", k.c_str(), shape(t).c_str());
      ++problems;
    }
  }
  if (problems == 0) {
    std::printf("%s fits %s (%zu tensors)\n", path.c_str(), model.c_str(), expected.size());
    return 0;
  }
  std::printf("%s does not fit %s: %d problem(s)\n", path.c_str(), model.c_str(), problems);
  return kExitDifferent;
}

int diff(const std::string& a_path, const std::string& b_path, double tolerance) {
  const tc::StateDict a = read(a_path);
  const auto b = tc::to_map(read(b_path));
  int problems = 0;
  double worst = 0;
  for (const auto& [k, t] : a) {
    const auto it = b.find(k);
    if (it == b.end()) {
      std::printf("only in %s: %s\n", a_path.c_str(), k.c_str());
      ++problems;
      continue;
    }
    if (it->second.sizes() != t.sizes()) {
      std::printf("shape %s: %s vs %s\n", k.c_str(), shape(t).c_str(), shape(it->second).c_str());
      ++problems;
      continue;
    }
    const double d =
        t.numel() == 0
            ? 0.0
            : (t.to(torch::kFloat64) - it->second.to(torch::kFloat64)).abs().max().item<double>();
    worst = std::max(worst, d);
    if (d > tolerance) {
      std::printf("value %s: max |a - b| = %.9g\n", k.c_str(), d);
      ++problems;
    }
  }
  for (const auto& [k, t] : b) {
    bool found = false;
    for (const auto& [ka, ta] : a) found = found || ka == k;
    if (!found) {
      std::printf("only in %s: %s\n", b_path.c_str(), k.c_str());
      ++problems;
    }
  }
  std::printf("%zu keys compared, largest |a - b| = %.9g, %d difference(s)\n", a.size(), worst,
              problems);
  return problems == 0 ? 0 : kExitDifferent;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    std::cout << kUsage;
    return args.empty() ? kExitUsage : 0;
  }
  const std::string command = args[0];
  std::vector<std::string> files;
  std::map<std::string, std::string> flags;
  bool json = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--json") {
      json = true;
    } else if (a.rfind("--", 0) == 0) {
      if (i + 1 >= args.size()) {
        std::cerr << "w2p-weights: " << a << " needs a value\n";
        return kExitUsage;
      }
      flags[a.substr(2)] = args[++i];
    } else {
      files.push_back(a);
    }
  }
  try {
    if (command == "inspect" && files.size() == 1 && flags.empty()) return inspect(files[0], json);
    if (command == "convert" && files.size() == 2) {
      return convert(files[0], files[1], flags.count("strip-prefix") ? flags["strip-prefix"] : "",
                     flags.count("add-prefix") ? flags["add-prefix"] : "");
    }
    if (command == "check" && files.size() == 1 && flags.count("model")) {
      std::map<std::string, int64_t> opt;
      for (const auto& [k, v] : flags) {
        if (k != "model") opt[k] = std::stoll(v);
      }
      return check(files[0], flags["model"], opt);
    }
    if (command == "diff" && files.size() == 2) {
      return diff(files[0], files[1],
                  flags.count("tolerance") ? std::stod(flags["tolerance"]) : 0.0);
    }
  } catch (const std::exception& e) {
    std::cerr << "w2p-weights: " << e.what() << "\n";
    return kExitUsage;
  }
  std::cerr << "w2p-weights: cannot understand the arguments\n" << kUsage;
  return kExitUsage;
}
