// Plugin `roomsim`: room simulation nodes over the kernels in ../kernels.
//   roomsim.wav2pos_geometry  utterances -> wav2pos scenes (room, source, microphones)
//   roomsim.shoebox           scenes -> simulated items (cropped audio, TDOA labels)
//   roomsim.position_stats    items -> per-axis mean/std of the source positions
#include <fftw3.h>
#include <w2p/plugin.hpp>

#include "roomsim/nodes/roomsim_nodes.hpp"

namespace {

void register_nodes(w2p::Registry& registry) {
  // FFTW's planner is shared by every plugin in the process: make it take its own lock before
  // any node plans (registration runs before the graph, on one thread).
  fftwf_make_planner_thread_safe();
  registry.add(w2p::roomsim::wav2pos_geometry_node_type());
  registry.add(w2p::roomsim::shoebox_node_type());
  registry.add(w2p::roomsim::position_stats_node_type());
}

}  // namespace

W2P_PLUGIN("roomsim", "0.1.0", register_nodes)
