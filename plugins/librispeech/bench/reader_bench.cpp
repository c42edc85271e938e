// Reader throughput on the default corpus (tools/make-default-corpus; W2P_CORPUS overrides the
// root): index build = decode + silence filter of every file without a cache, at 1 and 2
// threads; decode = reading every kept utterance's audio as process() does.
// Counters: utterances per second and real-time factor (seconds of audio per second of work).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>

#include "librispeech/reader/audio_file.hpp"
#include "librispeech/reader/corpus_index.hpp"

namespace ls = w2p::librispeech;

namespace {

std::string corpus_root() {
  const char* env = std::getenv("W2P_CORPUS");
  return env != nullptr ? env : W2P_DEFAULT_CORPUS;
}

bool have_corpus(benchmark::State& state) {
  if (std::filesystem::exists(corpus_root() + "/LibriSpeech/test-clean")) return true;
  state.SkipWithError(
      ("no corpus at " + corpus_root() + ": run tools/make-default-corpus").c_str());
  return false;
}

void BM_IndexBuild(benchmark::State& state) {
  if (!have_corpus(state)) return;
  ls::IndexOptions o;
  o.root = corpus_root();
  o.threads = static_cast<int>(state.range(0));
  o.min_voiced_seconds = 0;  // every file counts towards the real-time factor
  double audio = 0;
  std::int64_t files = 0;
  for (auto _ : state) {
    const ls::CorpusIndex index = ls::build_index(o, [](const std::string&) {});
    files = index.stats.files;
    audio = 0;
    for (const auto& u : index.utterances) audio += u.seconds;
  }
  state.counters["utt_per_s"] = benchmark::Counter(static_cast<double>(files) * state.iterations(),
                                                   benchmark::Counter::kIsRate);
  state.counters["rtf"] =
      benchmark::Counter(audio * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_IndexBuild)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(2);

void BM_Decode(benchmark::State& state) {
  if (!have_corpus(state)) return;
  ls::IndexOptions o;
  o.root = corpus_root();
  o.threads = 2;
  const ls::CorpusIndex index = ls::build_index(o, [](const std::string&) {});
  double audio = 0;
  for (auto _ : state) {
    for (const auto& u : index.utterances) {
      const ls::AudioData a = ls::read_audio(u.path, o.audio);
      benchmark::DoNotOptimize(a.samples.data());
      audio += u.seconds;
    }
  }
  state.counters["utt_per_s"] =
      benchmark::Counter(static_cast<double>(index.utterances.size()) * state.iterations(),
                         benchmark::Counter::kIsRate);
  state.counters["rtf"] = benchmark::Counter(audio, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
