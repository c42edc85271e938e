#include "roomsim/kernels/rir_high_pass.hpp"

#include <cmath>
#include <complex>
#include <sstream>
#include <stdexcept>
#include <string>

namespace w2p::roomsim {
namespace {

constexpr double kPi = 3.14159265358979323846;
// scipy's default pad length for one section: 3 * (2 * sections + 1).
constexpr std::size_t kPadLength = 9;

// Direct form II transposed over `x`, starting from state (z0, z1); the scipy sosfilt recursion.
void filter_in_place(const Biquad& s, std::vector<double>& x, double z0, double z1) {
  for (double& v : x) {
    const double in = v;
    const double out = s.b0 * in + z0;
    z0 = s.b1 * in - s.a1 * out + z1;
    z1 = s.b2 * in - s.a2 * out;
    v = out;
  }
}

}  // namespace

Biquad butterworth_high_pass(double cutoff_hz, double sample_rate) {
  const double wn = 2.0 * cutoff_hz / sample_rate;  // normalised to Nyquist
  if (!(wn > 0.0 && wn < 1.0)) {
    std::ostringstream out;
    out << "high-pass cutoff must be in (0, sample_rate / 2), got " << cutoff_hz
        << " Hz at sample rate " << sample_rate << " Hz";
    throw std::invalid_argument(out.str());
  }
  using C = std::complex<double>;
  // Analog Butterworth prototype of order 2: poles -exp(+-j pi / 4), gain 1.
  const C p_proto[2] = {-std::exp(C(0.0, -kPi / 4.0)), -std::exp(C(0.0, kPi / 4.0))};
  // Pre-warp (scipy designs with fs = 2): warped = 2 fs tan(pi wn / fs).
  const double warped = 4.0 * std::tan(kPi * wn / 2.0);
  // Low-pass to high-pass: poles wo / p, two zeros at the origin, gain 1 / prod(-p).
  C p_hp[2];
  for (int i = 0; i < 2; ++i) p_hp[i] = warped / p_proto[i];
  const double k_hp = 1.0 / std::real((-p_proto[0]) * (-p_proto[1]));
  // Bilinear transform with fs2 = 2 fs = 4: z -> (4 + s) / (4 - s); zeros at z = 1.
  constexpr double kFs2 = 4.0;
  C p_z[2];
  for (int i = 0; i < 2; ++i) p_z[i] = (kFs2 + p_hp[i]) / (kFs2 - p_hp[i]);
  const double k_z = k_hp * std::real(C(kFs2 * kFs2) / ((kFs2 - p_hp[0]) * (kFs2 - p_hp[1])));

  Biquad s;
  s.b0 = k_z;
  s.b1 = -2.0 * k_z;
  s.b2 = k_z;
  s.a1 = std::real(-(p_z[0] + p_z[1]));
  s.a2 = std::real(p_z[0] * p_z[1]);
  return s;
}

std::vector<double> filtfilt(const Biquad& s, const std::vector<double>& x) {
  const std::size_t n = x.size();
  if (n <= kPadLength) {
    throw std::invalid_argument("zero-phase filtering needs more than " +
                                std::to_string(kPadLength) + " samples, got " + std::to_string(n));
  }
  // Odd extension: 2 x[0] - x[pad..1] before, 2 x[n-1] - x[n-2..n-1-pad] after.
  std::vector<double> ext;
  ext.reserve(n + 2 * kPadLength);
  for (std::size_t i = kPadLength; i >= 1; --i) ext.push_back(2.0 * x[0] - x[i]);
  ext.insert(ext.end(), x.begin(), x.end());
  for (std::size_t i = 2; i <= kPadLength + 1; ++i) ext.push_back(2.0 * x[n - 1] - x[n - i]);

  // Steady-state initial conditions for a unit step (scipy lfilter_zi): solve
  // (I - A^T) zi = b[1:] - a[1:] b0.
  const double rhs0 = s.b1 - s.a1 * s.b0;
  const double rhs1 = s.b2 - s.a2 * s.b0;
  const double zi0 = (rhs0 + rhs1) / (1.0 + s.a1 + s.a2);
  const double zi1 = rhs1 - s.a2 * zi0;

  const double x0 = ext.front();
  filter_in_place(s, ext, zi0 * x0, zi1 * x0);
  std::vector<double> rev(ext.rbegin(), ext.rend());
  const double y0 = rev.front();
  filter_in_place(s, rev, zi0 * y0, zi1 * y0);

  std::vector<double> y(n);
  for (std::size_t i = 0; i < n; ++i) y[i] = rev[rev.size() - 1 - kPadLength - i];
  return y;
}

void high_pass_rir(std::vector<float>& rir, double cutoff_hz, double sample_rate) {
  const Biquad s = butterworth_high_pass(cutoff_hz, sample_rate);
  const std::vector<double> filtered = filtfilt(s, std::vector<double>(rir.begin(), rir.end()));
  for (std::size_t i = 0; i < rir.size(); ++i) rir[i] = static_cast<float>(filtered[i]);
}

}  // namespace w2p::roomsim
