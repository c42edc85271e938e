#include "baseline/kernels/multilateration.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace w2p::baseline {

namespace {

using Eigen::MatrixX3d;
using Eigen::Vector3d;
using Eigen::VectorXd;

void check_input(const char* who, const MicArray& mics, const VectorXd& times,
                 const MultilaterationOptions& options) {
  const std::string name(who);
  if (mics.rows() < 4) {
    throw std::invalid_argument(name + ": need at least 4 microphones for a 3-D position, got " +
                                std::to_string(mics.rows()));
  }
  if (times.size() != mics.rows()) {
    throw std::invalid_argument(name + ": " + std::to_string(times.size()) + " times for " +
                                std::to_string(mics.rows()) + " microphones");
  }
  if (!mics.allFinite() || !times.allFinite()) {
    throw std::invalid_argument(name + ": non-finite microphone position or time");
  }
  if (!(options.speed_of_sound > 0.0) || options.max_iterations < 0) {
    throw std::invalid_argument(name + ": speed_of_sound must be > 0, max_iterations >= 0");
  }
  // A 3-D position is identifiable only if the microphones span 3-D: on a line the problem is
  // rotationally symmetric about it, on a plane mirror-symmetric about it.
  const MatrixX3d centred = mics.rowwise() - mics.colwise().mean();
  const Vector3d sv = Eigen::JacobiSVD<MatrixX3d>(centred).singularValues();
  if (sv(0) == 0.0) throw std::invalid_argument(name + ": all microphones coincide");
  if (sv(1) <= options.degeneracy_tolerance * sv(0)) {
    throw std::invalid_argument(name + ": microphones are collinear (degenerate geometry)");
  }
  if (sv(2) <= options.degeneracy_tolerance * sv(0)) {
    throw std::invalid_argument(name + ": microphones are coplanar (degenerate geometry)");
  }
}

// Unit vector from a microphone to s (zero when s sits on it: the range is not differentiable
// there, and zero is a valid subgradient).
Vector3d unit_from(const Vector3d& s, const Vector3d& m) {
  const Vector3d v = s - m;
  const double r = v.norm();
  return r > 0.0 ? Vector3d(v / r) : Vector3d::Zero();
}

// Range residuals of a candidate position and their Jacobian. TDOA: r_i = |s - m_i| - |s - m_0|
// - d_i for i >= 1; TOA: r_i = |s - m_i| - d_i for all i.
struct RangeModel {
  const MicArray& mics;
  VectorXd ranges;  // d_i in metres (TDOA: entry 0 unused)
  bool differences;

  Eigen::Index count() const { return differences ? mics.rows() - 1 : mics.rows(); }

  void evaluate(const Vector3d& s, VectorXd& r,
                Eigen::Matrix<double, Eigen::Dynamic, 3>* jac) const {
    const Eigen::Index first = differences ? 1 : 0;
    r.resize(count());
    if (jac) jac->resize(count(), 3);
    const Vector3d m0 = mics.row(0).transpose();
    const double r0 = differences ? (s - m0).norm() : 0.0;
    const Vector3d u0 = differences ? unit_from(s, m0) : Vector3d::Zero();
    for (Eigen::Index i = first; i < mics.rows(); ++i) {
      const Vector3d mi = mics.row(i).transpose();
      r(i - first) = (s - mi).norm() - r0 - ranges(i);
      if (jac) jac->row(i - first) = (unit_from(s, mi) - u0).transpose();
    }
  }

  double cost(const Vector3d& s) const {
    VectorXd r;
    evaluate(s, r, nullptr);
    return r.squaredNorm();
  }
};

// Levenberg-Marquardt with Marquardt's diagonal scaling, from `start`.
MultilaterationResult refine(const RangeModel& model, const Vector3d& start,
                             const MultilaterationOptions& options) {
  MultilaterationResult result;
  result.initial = start;
  Vector3d s = start;
  VectorXd r;
  Eigen::Matrix<double, Eigen::Dynamic, 3> jac;
  model.evaluate(s, r, &jac);
  double cost = r.squaredNorm();
  double lambda = 1e-3;
  for (int it = 0; it < options.max_iterations; ++it) {
    result.iterations = it + 1;
    const Eigen::Matrix3d jtj = jac.transpose() * jac;
    const Vector3d gradient = jac.transpose() * r;
    // Retry with more damping until the cost does not increase (or the step is negligible).
    bool accepted = false;
    Vector3d step = Vector3d::Zero();
    while (!accepted) {
      Eigen::Matrix3d damped = jtj;
      for (int k = 0; k < 3; ++k) damped(k, k) += lambda * std::max(jtj(k, k), 1e-12);
      step = -damped.ldlt().solve(gradient);
      if (!step.allFinite()) step.setZero();
      const double new_cost = model.cost(s + step);
      if (new_cost <= cost) {
        accepted = true;
        s += step;
        model.evaluate(s, r, &jac);
        cost = r.squaredNorm();
        lambda = std::max(lambda / 10.0, 1e-12);
      } else {
        lambda *= 10.0;
        if (step.norm() < options.step_tolerance || lambda > 1e12) break;
      }
    }
    if (step.norm() < options.step_tolerance || cost == 0.0) {
      result.converged = true;
      break;
    }
  }
  result.position = s;
  result.rms_residual_m = std::sqrt(cost / static_cast<double>(model.count()));
  return result;
}

// Refines every candidate start and keeps the lowest final cost; on ties (several starts
// converging to the same point) the start that fitted best itself is reported.
MultilaterationResult best_of(const RangeModel& model, std::vector<Vector3d> starts,
                              const MultilaterationOptions& options) {
  starts.erase(std::remove_if(starts.begin(), starts.end(),
                              [](const Vector3d& s) { return !s.allFinite(); }),
               starts.end());
  std::stable_sort(starts.begin(), starts.end(), [&](const Vector3d& a, const Vector3d& b) {
    return model.cost(a) < model.cost(b);
  });
  MultilaterationResult best;
  double best_rms = std::numeric_limits<double>::infinity();
  for (const Vector3d& start : starts) {
    MultilaterationResult candidate = refine(model, start, options);
    // Residuals within 1e-12 m count as equal (exact data can converge to rounding-level
    // residuals from every start).
    if (candidate.rms_residual_m < best_rms - 1e-12) {
      best_rms = candidate.rms_residual_m;
      best = candidate;
    }
  }
  return best;
}

}  // namespace

MultilaterationResult locate_from_tdoa(const MicArray& mics, const VectorXd& tdoa_s,
                                       const MultilaterationOptions& options) {
  check_input("locate_from_tdoa", mics, tdoa_s, options);
  const Eigen::Index m = mics.rows();
  const VectorXd d = options.speed_of_sound * tdoa_s;
  const Vector3d m0 = mics.row(0).transpose();
  // Spherical intersection around microphone 0.
  const MatrixX3d x = mics.bottomRows(m - 1).rowwise() - mics.row(0);
  const VectorXd dd = d.tail(m - 1);
  const VectorXd delta = x.rowwise().squaredNorm() - dd.cwiseAbs2();
  const Eigen::ColPivHouseholderQR<MatrixX3d> qr(x);
  const Vector3d a = qr.solve(delta) / 2.0;
  const Vector3d b = qr.solve(dd);
  // |a - R b|^2 = R^2  <=>  (b.b - 1) R^2 - 2 (a.b) R + a.a = 0.
  const double qa = b.squaredNorm() - 1.0, qb = -2.0 * a.dot(b), qc = a.squaredNorm();
  // Roots in the cancellation-free form (q / qa and qc / q): b.b is often close to 1, and the
  // textbook formula then loses the physical root to rounding.
  std::vector<double> radii;
  const double disc = qb * qb - 4.0 * qa * qc;
  if (disc >= 0.0) {
    const double q = -0.5 * (qb + std::copysign(std::sqrt(disc), qb));
    if (qa != 0.0) radii.push_back(q / qa);
    if (q != 0.0) radii.push_back(qc / q);
  } else if (qa != 0.0) {
    radii.push_back(-qb / (2.0 * qa));  // noisy data: closest approach of the two sides
  }
  std::vector<Vector3d> starts;
  for (double radius : radii) {
    if (radius >= 0.0) starts.push_back(m0 + a - radius * b);
  }
  // Without a usable root, start from the array centre.
  if (starts.empty()) starts.push_back(mics.colwise().mean().transpose());
  const RangeModel model{mics, d, true};
  return best_of(model, starts, options);
}

MultilaterationResult locate_from_toa(const MicArray& mics, const VectorXd& toa_s,
                                      const MultilaterationOptions& options) {
  check_input("locate_from_toa", mics, toa_s, options);
  const Eigen::Index m = mics.rows();
  const VectorXd r = options.speed_of_sound * toa_s;
  // |s - m_i|^2 - |s - m_0|^2 = r_i^2 - r_0^2 is linear in s:
  // 2 (m_i - m_0).s = |m_i|^2 - |m_0|^2 - r_i^2 + r_0^2.
  const MatrixX3d x = mics.bottomRows(m - 1).rowwise() - mics.row(0);
  const VectorXd rhs = (mics.bottomRows(m - 1).rowwise().squaredNorm().array() -
                        mics.row(0).squaredNorm() - r.tail(m - 1).cwiseAbs2().array() + r(0) * r(0))
                           .matrix();
  const Vector3d start = x.colPivHouseholderQr().solve(rhs) / 2.0;
  const RangeModel model{mics, r, false};
  return best_of(model, {start}, options);
}

namespace {

// The rows of `mics` listed in `used` (in that order).
MicArray select_rows(const MicArray& mics, const std::vector<int>& used) {
  MicArray out(static_cast<Eigen::Index>(used.size()), 3);
  for (std::size_t i = 0; i < used.size(); ++i) {
    out.row(static_cast<Eigen::Index>(i)) = mics.row(used[i]);
  }
  return out;
}

void check_row(const char* who, const MicArray& mics, int row, std::size_t index) {
  if (row < 0 || row >= mics.rows()) {
    throw std::invalid_argument(std::string(who) + ": entry " + std::to_string(index) +
                                " names microphone row " + std::to_string(row) + ", expected 0.." +
                                std::to_string(mics.rows() - 1));
  }
}

}  // namespace

MultilaterationResult locate_from_pair_delays(const MicArray& mics,
                                              const std::vector<PairDelay>& delays,
                                              const MultilaterationOptions& options) {
  const char* who = "locate_from_pair_delays";
  // Microphones that occur in some pair; slot = index among them (row order) = unknown + 1.
  std::vector<int> slot(static_cast<std::size_t>(mics.rows()), -1);
  for (std::size_t k = 0; k < delays.size(); ++k) {
    const PairDelay& pd = delays[k];
    check_row(who, mics, pd.a, k);
    check_row(who, mics, pd.b, k);
    if (pd.a == pd.b) {
      throw std::invalid_argument(std::string(who) + ": pair " + std::to_string(k) +
                                  " relates microphone row " + std::to_string(pd.a) + " to itself");
    }
    if (!std::isfinite(pd.seconds)) {
      throw std::invalid_argument(std::string(who) + ": non-finite delay in pair " +
                                  std::to_string(k));
    }
    slot[static_cast<std::size_t>(pd.a)] = 0;
    slot[static_cast<std::size_t>(pd.b)] = 0;
  }
  std::vector<int> used;
  for (std::size_t r = 0; r < slot.size(); ++r) {
    if (slot[r] == 0) {
      slot[r] = static_cast<int>(used.size());
      used.push_back(static_cast<int>(r));
    }
  }
  if (used.size() < 4) {
    throw std::invalid_argument(std::string(who) + ": the pairs connect " +
                                std::to_string(used.size()) +
                                " microphone(s); need at least 4 microphones for a 3-D position");
  }
  // Least squares for t_i - t_0 (the first used microphone's time is the reference): with all
  // pairs, every microphone's delay averages over the pairs it is in.
  const auto unknowns = static_cast<Eigen::Index>(used.size() - 1);
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(static_cast<Eigen::Index>(delays.size()), unknowns);
  VectorXd b(static_cast<Eigen::Index>(delays.size()));
  for (std::size_t k = 0; k < delays.size(); ++k) {
    const auto row = static_cast<Eigen::Index>(k);
    const int ia = slot[static_cast<std::size_t>(delays[k].a)];
    const int ib = slot[static_cast<std::size_t>(delays[k].b)];
    if (ia > 0) a(row, ia - 1) += 1.0;
    if (ib > 0) a(row, ib - 1) -= 1.0;
    b(row) = delays[k].seconds;
  }
  const Eigen::ColPivHouseholderQR<Eigen::MatrixXd> qr(a);
  if (qr.rank() < unknowns) {
    throw std::invalid_argument(std::string(who) + ": the pairs do not connect all " +
                                std::to_string(used.size()) +
                                " microphones they mention (expected every microphone linked "
                                "to the others through some chain of pairs)");
  }
  const VectorXd rel = qr.solve(b);
  VectorXd tdoa_s = VectorXd::Zero(static_cast<Eigen::Index>(used.size()));
  tdoa_s.tail(unknowns) = rel;
  return locate_from_tdoa(select_rows(mics, used), tdoa_s, options);
}

MultilaterationResult locate_from_arrival_times(const MicArray& mics, const std::vector<int>& rows,
                                                const std::vector<double>& toa_s,
                                                const MultilaterationOptions& options) {
  const char* who = "locate_from_arrival_times";
  if (rows.size() != toa_s.size()) {
    throw std::invalid_argument(std::string(who) + ": " + std::to_string(toa_s.size()) +
                                " times for " + std::to_string(rows.size()) + " rows");
  }
  // Times of arrival, averaged when a microphone is measured more than once.
  std::vector<double> sum(static_cast<std::size_t>(mics.rows()), 0.0);
  std::vector<int> count(static_cast<std::size_t>(mics.rows()), 0);
  for (std::size_t k = 0; k < rows.size(); ++k) {
    check_row(who, mics, rows[k], k);
    sum[static_cast<std::size_t>(rows[k])] += toa_s[k];
    ++count[static_cast<std::size_t>(rows[k])];
  }
  std::vector<int> used;
  for (std::size_t r = 0; r < count.size(); ++r) {
    if (count[r] > 0) used.push_back(static_cast<int>(r));
  }
  if (used.size() < 4) {
    throw std::invalid_argument(std::string(who) + ": times for " + std::to_string(used.size()) +
                                " microphone(s); need at least 4 microphones for a 3-D position");
  }
  VectorXd toa(static_cast<Eigen::Index>(used.size()));
  for (std::size_t i = 0; i < used.size(); ++i) {
    const auto r = static_cast<std::size_t>(used[i]);
    toa(static_cast<Eigen::Index>(i)) = sum[r] / count[r];
  }
  return locate_from_toa(select_rows(mics, used), toa, options);
}

double percentile(const std::vector<double>& sorted, double q) {
  if (!(q >= 0.0 && q <= 100.0)) {
    throw std::invalid_argument("percentile: q = " + std::to_string(q) + ", expected [0, 100]");
  }
  if (sorted.empty()) return std::numeric_limits<double>::quiet_NaN();
  const double pos = q / 100.0 * static_cast<double>(sorted.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

}  // namespace w2p::baseline
