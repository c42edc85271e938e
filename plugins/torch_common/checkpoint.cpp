#include "torch_common/checkpoint.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Dict.h>
#include <ATen/core/List.h>
#include <fcntl.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <stdexcept>

#include "torch_common/state_dict.hpp"

namespace w2p::torch_common {
namespace {

constexpr int64_t kFormatVersion = 1;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw std::runtime_error("checkpoint " + path + ": " + what);
}

// Makes the rename itself durable (best effort: some file systems refuse fsync on directories).
void sync_parent_dir(const std::string& path) {
  auto dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace

torch::Tensor capture_torch_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void restore_torch_rng_state(const torch::Tensor& state) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

void save_checkpoint(const std::string& path, const torch::nn::Module& model,
                     const torch::optim::Optimizer* optimizer, const CheckpointMeta& meta) {
  torch::serialize::OutputArchive archive;
  archive.write("format_version", c10::IValue(kFormatVersion));
  c10::Dict<std::string, at::Tensor> model_state;
  for (const auto& [key, value] : state_dict(model)) model_state.insert(key, value.detach());
  archive.write("model_state", c10::IValue(model_state));
  if (optimizer != nullptr) {
    torch::serialize::OutputArchive opt_archive;
    optimizer->save(opt_archive);
    archive.write("optimizer", opt_archive);
  }
  archive.write("has_optimizer", c10::IValue(optimizer != nullptr));
  archive.write("epoch", c10::IValue(meta.epoch));
  archive.write("scheduler_state", c10::IValue(c10::List<double>(meta.scheduler_state)));
  c10::List<int64_t> words;
  for (const uint64_t w : meta.rng_words) words.push_back(static_cast<int64_t>(w));
  archive.write("rng_words", c10::IValue(words));
  archive.write("has_torch_rng_state", c10::IValue(meta.torch_rng_state.defined()));
  if (meta.torch_rng_state.defined()) archive.write("torch_rng_state", meta.torch_rng_state);

  const std::string tmp = path + ".tmp";
  std::FILE* file = std::fopen(tmp.c_str(), "wb");
  if (file == nullptr) fail(path, "cannot open " + tmp + " for writing");
  bool ok = true;
  try {
    archive.save_to([file, &ok](const void* buf, size_t n) -> size_t {
      const size_t written = std::fwrite(buf, 1, n, file);
      ok = ok && written == n;
      return written;
    });
  } catch (const c10::Error&) {
    ok = false;
  }
  ok = std::fflush(file) == 0 && ok;
  ok = ::fsync(fileno(file)) == 0 && ok;
  ok = std::fclose(file) == 0 && ok;
  std::error_code ec;
  if (!ok) {
    std::filesystem::remove(tmp, ec);
    fail(path, "write failed");
  }
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    fail(path, "cannot rename " + tmp + " into place");
  }
  sync_parent_dir(path);
}

CheckpointMeta load_checkpoint(const std::string& path, torch::nn::Module& model,
                               torch::optim::Optimizer* optimizer) {
  if (!std::filesystem::is_regular_file(path)) fail(path, "no such file");
  torch::serialize::InputArchive archive;
  CheckpointMeta meta;
  try {
    archive.load_from(path);
    c10::IValue value;
    archive.read("format_version", value);
    if (value.toInt() != kFormatVersion) fail(path, "unknown format version");
    archive.read("model_state", value);
    std::map<std::string, torch::Tensor> model_state;
    for (const auto& entry : value.toGenericDict()) {
      model_state.emplace(entry.key().toStringRef(), entry.value().toTensor());
    }
    try {
      load_state_dict(model, model_state, /*strict=*/true);
    } catch (const std::runtime_error& e) {
      fail(path,
           std::string("does not fit the model (another architecture or max_tau?): ") + e.what());
    }
    archive.read("has_optimizer", value);
    if (optimizer != nullptr) {
      if (!value.toBool()) fail(path, "holds no optimiser state");
      torch::serialize::InputArchive opt_archive;
      archive.read("optimizer", opt_archive);
      optimizer->load(opt_archive);
    }
    archive.read("epoch", value);
    meta.epoch = value.toInt();
    archive.read("scheduler_state", value);
    for (const double d : value.toDoubleList()) meta.scheduler_state.push_back(d);
    archive.read("rng_words", value);
    for (const int64_t w : value.toIntList()) meta.rng_words.push_back(static_cast<uint64_t>(w));
    archive.read("has_torch_rng_state", value);
    if (value.toBool()) archive.read("torch_rng_state", meta.torch_rng_state);
  } catch (const c10::Error& e) {
    fail(path, std::string("cannot read: ") + e.what_without_backtrace());
  }
  return meta;
}

}  // namespace w2p::torch_common
