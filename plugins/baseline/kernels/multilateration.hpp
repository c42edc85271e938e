// Classical source localisation from time differences (or times) of arrival at known
// microphones: a closed-form start refined by Levenberg-Marquardt on the range residuals.
#pragma once

#include <Eigen/Core>
#include <vector>

namespace w2p::baseline {

/// Microphone positions, one row (x, y, z) per microphone, in metres.
using MicArray = Eigen::Matrix<double, Eigen::Dynamic, 3>;

struct MultilaterationOptions {
  double speed_of_sound = 343.0;  ///< m/s (spec: c = 343)
  int max_iterations = 100;       ///< Levenberg-Marquardt iterations
  /// Stop when a step moves the estimate by less than this (metres).
  double step_tolerance = 1e-12;
  /// Microphone sets whose spread is this close to a line or plane (smallest singular value of
  /// the centred positions over the largest) are rejected as degenerate.
  double degeneracy_tolerance = 1e-9;
};

struct MultilaterationResult {
  Eigen::Vector3d position = Eigen::Vector3d::Zero();  ///< refined estimate (m)
  Eigen::Vector3d initial = Eigen::Vector3d::Zero();   ///< closed-form start (m)
  double rms_residual_m = 0.0;  ///< RMS of the range residuals at `position` (m)
  int iterations = 0;           ///< Levenberg-Marquardt iterations run
  bool converged = false;       ///< the step fell below step_tolerance before max_iterations
};

/// Source position from TDOAs relative to microphone 0: tdoa_s[i] = t_i - t_0 in seconds
/// (tdoa_s[0] is ignored), i.e. |s - m_i| - |s - m_0| = c tdoa_s[i].
/// Start: spherical intersection (Smith & Abel): with x_i = m_i - m_0, d_i = c tdoa_i and
/// R = |s - m_0|, the equations 2 x_i.(s - m_0) + 2 d_i R = |x_i|^2 - d_i^2 give s - m_0 = a - R b
/// in least squares, and |a - R b| = R fixes R (the positive root with the smaller residual).
/// Then Levenberg-Marquardt on the M - 1 range-difference residuals.
/// Throws std::invalid_argument for fewer than 4 microphones, a size mismatch, non-finite input,
/// or microphones (nearly) on one line or plane (the position is then not identifiable).
MultilaterationResult locate_from_tdoa(const MicArray& mics, const Eigen::VectorXd& tdoa_s,
                                       const MultilaterationOptions& options = {});

/// Source position from times of arrival when the emission time is known (the reference's
/// T[i][0], spec §1.4): |s - m_i| = c toa_s[i]. Start: linear least squares on the differences
/// of the squared range equations; then Levenberg-Marquardt on the M range residuals.
/// Same preconditions and errors as locate_from_tdoa.
MultilaterationResult locate_from_toa(const MicArray& mics, const Eigen::VectorXd& toa_s,
                                      const MultilaterationOptions& options = {});

/// One measured delay between two microphones: t_a - t_b in seconds (a, b = rows of the MicArray).
struct PairDelay {
  int a;
  int b;
  double seconds;
};

/// Source position from delays between microphone pairs (any subset of pairs, any number per
/// pair): the per-microphone arrival times relative to the first used microphone are solved by
/// least squares over all pairs (ColPivHouseholderQR; rank check), then locate_from_tdoa on the
/// used microphones. Pairs with a == b or rows out of range are rejected (invalid_argument);
/// microphones in no pair are ignored. The result's initial/position refer to the same frame as
/// `mics`. Throws std::invalid_argument when fewer than 4 microphones are used or the pairs do
/// not connect them, for a non-finite delay, and for everything locate_from_tdoa rejects.
MultilaterationResult locate_from_pair_delays(const MicArray& mics,
                                              const std::vector<PairDelay>& delays,
                                              const MultilaterationOptions& options = {});

/// Times of arrival per microphone row with repeats averaged: toa_s[k] for row rows[k]; then
/// locate_from_toa on the used rows (ascending). Throws std::invalid_argument when rows and toa_s
/// differ in size, a row is out of range, fewer than 4 distinct rows are used, and for everything
/// locate_from_toa rejects.
MultilaterationResult locate_from_arrival_times(const MicArray& mics, const std::vector<int>& rows,
                                                const std::vector<double>& toa_s,
                                                const MultilaterationOptions& options = {});

/// Percentile q in [0, 100] of ascending values with linear interpolation (numpy's default);
/// NaN when empty. Throws std::invalid_argument for q outside [0, 100] (or NaN).
double percentile(const std::vector<double>& sorted, double q);

}  // namespace w2p::baseline
