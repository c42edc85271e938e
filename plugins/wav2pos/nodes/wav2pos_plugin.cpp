// The wav2pos plugin: the masked-autoencoder localiser (spec §4) as pipeline nodes over the
// model in ../model: masker, trainer, evaluator.
#include <fftw3.h>
#include <w2p/plugin.hpp>

#include "wav2pos/nodes/wav2pos_nodes.hpp"

namespace w2p::wav2pos {
namespace {

void register_nodes(Registry& registry) {
  // The trainer's coloured noise and the evaluator's GCC-PHAT plan FFTW transforms; FFTW's
  // planner is process-wide, so make it take its own lock (registration runs on one thread).
  fftwf_make_planner_thread_safe();
  registry.add(masker_node_type());
  registry.add(trainer_node_type());
  registry.add(evaluator_node_type());
}

}  // namespace
}  // namespace w2p::wav2pos

W2P_PLUGIN("wav2pos", "0.1.0", w2p::wav2pos::register_nodes)
