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

}  // namespace w2p::baseline
