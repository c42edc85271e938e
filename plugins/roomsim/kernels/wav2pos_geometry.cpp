#include "roomsim/kernels/wav2pos_geometry.hpp"

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

namespace w2p::roomsim {
namespace {

constexpr const char* kAxes[3] = {"x", "y", "z"};

void check_unit(double u, const char* what, std::size_t index) {
  if (!(u >= 0.0 && u <= 1.0)) {
    std::ostringstream out;
    out << what << " uniform number " << index << " must be in [0, 1], got " << u;
    throw std::invalid_argument(out.str());
  }
}

void check_size(const Vec3& room_size) {
  for (int d = 0; d < 3; ++d) {
    if (!(std::isfinite(room_size[d]) && room_size[d] > 0.0)) {
      std::ostringstream out;
      out << "room size along " << kAxes[d] << " must be positive and finite, got " << room_size[d]
          << " m";
      throw std::invalid_argument(out.str());
    }
  }
}

}  // namespace

void validate_source_margins(const Vec3& room_size, const SourceMargins& margins) {
  check_size(room_size);
  for (int d = 0; d < 3; ++d) {
    const double lo = margins.low[d];
    const double hi = room_size[d] - margins.high[d];
    if (!(margins.low[d] >= 0.0 && margins.high[d] >= 0.0 && lo < hi)) {
      std::ostringstream out;
      out << "source margins along " << kAxes[d] << " (low " << margins.low[d] << " m, high "
          << margins.high[d] << " m) leave no room in a size of " << room_size[d] << " m";
      throw std::invalid_argument(out.str());
    }
  }
}

std::array<Vec3, 6> face_microphones_from_uniforms(const Vec3& room_size,
                                                   const std::array<double, 12>& u) {
  check_size(room_size);
  std::array<Vec3, 6> mics{};
  std::size_t next = 0;
  for (std::size_t i = 0; i < kMicrophoneFaces.size(); ++i) {
    const Face face = kMicrophoneFaces[i];
    for (int d = 0; d < 3; ++d) {
      if (d == face.axis) {
        mics[i][d] = face.high ? room_size[d] : 0.0;
      } else {
        check_unit(u[next], "microphone", next);
        mics[i][d] = u[next++] * room_size[d];
      }
    }
  }
  return mics;
}

Vec3 source_from_uniforms(const Vec3& room_size, const SourceMargins& margins,
                          const std::array<double, 3>& u) {
  validate_source_margins(room_size, margins);
  Vec3 s{};
  for (int d = 0; d < 3; ++d) {
    check_unit(u[d], "source", static_cast<std::size_t>(d));
    const double lo = margins.low[d];
    const double hi = room_size[d] - margins.high[d];
    s[d] = lo + u[d] * (hi - lo);
  }
  return s;
}

}  // namespace w2p::roomsim
