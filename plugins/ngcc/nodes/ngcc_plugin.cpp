// The ngcc plugin: NGCC-PHAT pre-training (and evaluation) nodes over the model in ../model.
#include <fftw3.h>
#include <w2p/plugin.hpp>

#include "ngcc/nodes/ngcc_nodes.hpp"

namespace w2p::ngcc {
namespace {

void register_nodes(Registry& registry) {
  // The trainer's coloured noise plans FFTW transforms; FFTW's planner is process-wide, so make
  // it take its own lock before any node plans (registration runs on one thread).
  fftwf_make_planner_thread_safe();
  registry.add(trainer_node_type());
  registry.add(evaluator_node_type());
}

}  // namespace
}  // namespace w2p::ngcc

W2P_PLUGIN("ngcc", "0.1.0", w2p::ngcc::register_nodes)
