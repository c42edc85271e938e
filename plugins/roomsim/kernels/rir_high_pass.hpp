// The optional RIR high-pass of pyroomacoustics (`rir_hpf_enable`): a 2nd-order digital
// Butterworth high-pass applied forwards and backwards (zero phase), as scipy's
// iirfilter(..., output="sos") followed by sosfiltfilt with its default odd padding.
#pragma once

#include <vector>

namespace w2p::roomsim {

/// One second-order section, a0 = 1:
/// y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2].
struct Biquad {
  double b0 = 1.0, b1 = 0.0, b2 = 0.0;
  double a1 = 0.0, a2 = 0.0;
};

/// 2nd-order Butterworth high-pass with -3 dB at `cutoff_hz`, designed as scipy does (analog
/// prototype, low-pass to high-pass at the pre-warped frequency, bilinear transform).
/// Throws std::invalid_argument unless 0 < cutoff_hz < sample_rate / 2.
Biquad butterworth_high_pass(double cutoff_hz, double sample_rate);

/// Zero-phase filtering as scipy.signal.sosfiltfilt(sos, x) with one section: odd extension by
/// 9 samples at each end, forward pass from the steady state scaled by the first sample,
/// backward pass likewise, extension removed. Returns x.size() samples. Throws
/// std::invalid_argument if x has 9 samples or fewer (scipy's padlen rule).
std::vector<double> filtfilt(const Biquad& section, const std::vector<double>& x);

/// The reference's RIR high-pass in place: butterworth_high_pass(cutoff_hz) then filtfilt, in
/// double, the result rounded to float.
void high_pass_rir(std::vector<float>& rir, double cutoff_hz, double sample_rate);

}  // namespace w2p::roomsim
