// Multilateration on synthetic geometries: exact data, noisy data (against a first-order error
// bound and least-squares optimality), the reference's label layout, and degenerate input.
#include "baseline/kernels/multilateration.hpp"

#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <functional>
#include <iostream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace w2p::baseline {
namespace {

constexpr double kC = 343.0;
constexpr double kFs = 16000.0;

// Spec §1.2: 5 x 5 x 2 m room, one microphone uniform on each face (floor, ceiling, y=0, x=0,
// x=5, y=5), source uniform in [0.5, 4.5] x [0.5, 4.5] x [0.25, 1.75].
struct Scene {
  MicArray mics;
  Eigen::Vector3d source;
};

Scene spec_room_scene(std::mt19937_64& gen) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Scene scene;
  scene.mics.resize(6, 3);
  scene.mics.row(0) << 5 * u(gen), 5 * u(gen), 0.0;
  scene.mics.row(1) << 5 * u(gen), 5 * u(gen), 2.0;
  scene.mics.row(2) << 5 * u(gen), 0.0, 2 * u(gen);
  scene.mics.row(3) << 0.0, 5 * u(gen), 2 * u(gen);
  scene.mics.row(4) << 5.0, 5 * u(gen), 2 * u(gen);
  scene.mics.row(5) << 5 * u(gen), 5.0, 2 * u(gen);
  scene.source << 0.5 + 4 * u(gen), 0.5 + 4 * u(gen), 0.25 + 1.5 * u(gen);
  return scene;
}

Eigen::VectorXd times_of_arrival(const MicArray& mics, const Eigen::Vector3d& s) {
  Eigen::VectorXd toa(mics.rows());
  for (Eigen::Index i = 0; i < mics.rows(); ++i) toa(i) = (mics.row(i).transpose() - s).norm() / kC;
  return toa;
}

Eigen::VectorXd tdoas_to_first(const MicArray& mics, const Eigen::Vector3d& s) {
  const Eigen::VectorXd toa = times_of_arrival(mics, s);
  return (toa.array() - toa(0)).matrix();
}

// Sum of squared range-difference residuals, straight from the definition.
double tdoa_cost(const MicArray& mics, const Eigen::VectorXd& tdoa, const Eigen::Vector3d& s) {
  const Eigen::VectorXd model = tdoas_to_first(mics, s);
  return (kC * (model - tdoa)).tail(mics.rows() - 1).squaredNorm();
}

TEST(Multilateration, ExactTdoasRecoverTheSourceInTheSpecRoom) {
  std::mt19937_64 gen(1);
  double worst = 0.0;
  for (int trial = 0; trial < 200; ++trial) {
    const Scene scene = spec_room_scene(gen);
    const MultilaterationResult result =
        locate_from_tdoa(scene.mics, tdoas_to_first(scene.mics, scene.source));
    const double error = (result.position - scene.source).norm();
    worst = std::max(worst, error);
    ASSERT_LT(error, 1e-6) << "trial " << trial << " start error "
                           << (result.initial - scene.source).norm();
    EXPECT_TRUE(result.converged) << trial;
    EXPECT_LT(result.rms_residual_m, 1e-9) << trial;
  }
  std::cout << "[ measured ] exact TDOA, 6 mics: worst error " << worst << " m\n";
}

TEST(Multilateration, ClosedFormStartIsAlreadyExactWithFiveOrMoreMics) {
  // With M - 1 >= 4 consistent equations the spherical-intersection start is the solution.
  std::mt19937_64 gen(2);
  for (int trial = 0; trial < 50; ++trial) {
    const Scene scene = spec_room_scene(gen);
    const MultilaterationResult result =
        locate_from_tdoa(scene.mics, tdoas_to_first(scene.mics, scene.source));
    EXPECT_LT((result.initial - scene.source).norm(), 1e-6) << trial;
  }
}

TEST(Multilateration, ExactTdoasWithFourMicsAroundTheSource) {
  // A regular tetrahedron around the source: four microphones, three range differences.
  MicArray mics(4, 3);
  mics << 1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, 1.0, -1.0, -1.0, -1.0, 1.0;
  mics = (mics * 1.5).rowwise() + Eigen::RowVector3d(2.5, 2.5, 1.0);
  for (const Eigen::Vector3d& s : {Eigen::Vector3d(2.5, 2.5, 1.0), Eigen::Vector3d(2.0, 2.8, 0.7),
                                   Eigen::Vector3d(3.1, 2.2, 1.3)}) {
    const MultilaterationResult result = locate_from_tdoa(mics, tdoas_to_first(mics, s));
    EXPECT_LT((result.position - s).norm(), 1e-6) << s.transpose();
  }
}

TEST(Multilateration, ExactToasRecoverTheSource) {
  std::mt19937_64 gen(3);
  for (int trial = 0; trial < 100; ++trial) {
    Scene scene = spec_room_scene(gen);
    const int mics = 4 + trial % 3;  // 4, 5 or 6 microphones
    const MicArray subset = scene.mics.topRows(mics);
    const MultilaterationResult result =
        locate_from_toa(subset, times_of_arrival(subset, scene.source));
    ASSERT_LT((result.position - scene.source).norm(), 1e-6) << trial;
    // The linearised start is exact for consistent ranges.
    EXPECT_LT((result.initial - scene.source).norm(), 1e-6) << trial;
  }
}

TEST(Multilateration, ReferenceLabelMatrixGivesTheSource) {
  // Spec §1.4: T[i][j] = (|s - m_i| - |s - m_j|) fs / c for microphones i, j >= 1 (channel 0 is
  // the source), T[i][0] = |s - m_i| fs / c. Rows 1..6 against column 1 are TDOAs to mic 1;
  // column 0 holds the TOAs.
  std::mt19937_64 gen(4);
  const Scene scene = spec_room_scene(gen);
  Eigen::MatrixXd t = Eigen::MatrixXd::Zero(7, 7);
  for (int i = 1; i <= 6; ++i) {
    const double ri = (scene.mics.row(i - 1).transpose() - scene.source).norm();
    t(i, 0) = ri * kFs / kC;
    t(0, i) = -t(i, 0);
    for (int j = 1; j <= 6; ++j) {
      const double rj = (scene.mics.row(j - 1).transpose() - scene.source).norm();
      t(i, j) = (ri - rj) * kFs / kC;
    }
  }
  const Eigen::VectorXd tdoa = t.block(1, 1, 6, 1) / kFs;
  const Eigen::VectorXd toa = t.block(1, 0, 6, 1) / kFs;
  EXPECT_LT((locate_from_tdoa(scene.mics, tdoa).position - scene.source).norm(), 1e-6);
  EXPECT_LT((locate_from_toa(scene.mics, toa).position - scene.source).norm(), 1e-6);
}

// Jacobian of the range differences (metres) with respect to the source, by central differences.
Eigen::MatrixXd numeric_jacobian(const MicArray& mics, const Eigen::Vector3d& s) {
  const double h = 1e-6;
  Eigen::MatrixXd jac(mics.rows() - 1, 3);
  for (int k = 0; k < 3; ++k) {
    Eigen::Vector3d plus = s, minus = s;
    plus(k) += h;
    minus(k) -= h;
    jac.col(k) = kC *
                 (tdoas_to_first(mics, plus) - tdoas_to_first(mics, minus)).tail(mics.rows() - 1) /
                 (2 * h);
  }
  return jac;
}

TEST(Multilateration, NoisyTdoasStayWithinTheFirstOrderErrorBound) {
  // TDOA noise of 0.1 sample at 16 kHz (2.1 mm of range difference). To first order the
  // least-squares error is J^+ e, so |error| <= |J^+|_2 |e|; 1.5x leaves room for the
  // second-order terms. The estimate must also fit the data at least as well as the truth.
  std::mt19937_64 gen(5);
  std::normal_distribution<double> noise(0.0, 0.1 / kFs);
  double worst_error = 0.0, worst_ratio = 0.0;
  for (int trial = 0; trial < 200; ++trial) {
    const Scene scene = spec_room_scene(gen);
    Eigen::VectorXd tdoa = tdoas_to_first(scene.mics, scene.source);
    Eigen::VectorXd e = Eigen::VectorXd::Zero(tdoa.size());
    for (Eigen::Index i = 1; i < e.size(); ++i) e(i) = noise(gen);
    tdoa += e;
    const MultilaterationResult result = locate_from_tdoa(scene.mics, tdoa);
    const double error = (result.position - scene.source).norm();
    const Eigen::VectorXd sv =
        numeric_jacobian(scene.mics, scene.source).jacobiSvd().singularValues();
    const double bound = kC * e.norm() / sv(sv.size() - 1);
    worst_error = std::max(worst_error, error);
    worst_ratio = std::max(worst_ratio, error / bound);
    ASSERT_LE(error, 1.5 * bound) << "trial " << trial;
    ASSERT_LE(tdoa_cost(scene.mics, tdoa, result.position),
              tdoa_cost(scene.mics, tdoa, scene.source) * (1.0 + 1e-9))
        << "trial " << trial;
  }
  std::cout << "[ measured ] 0.1-sample TDOA noise: worst error " << worst_error
            << " m, worst error / first-order bound " << worst_ratio << "\n";
}

TEST(Multilateration, NoisyToasStayClose) {
  std::mt19937_64 gen(6);
  std::normal_distribution<double> noise(0.0, 0.1 / kFs);
  double worst = 0.0;
  for (int trial = 0; trial < 200; ++trial) {
    const Scene scene = spec_room_scene(gen);
    Eigen::VectorXd toa = times_of_arrival(scene.mics, scene.source);
    for (Eigen::Index i = 0; i < toa.size(); ++i) toa(i) += noise(gen);
    const double error = (locate_from_toa(scene.mics, toa).position - scene.source).norm();
    worst = std::max(worst, error);
  }
  // Six ranges with 2.1 mm noise: errors of a few mm; 5 cm would mean a wrong solution.
  EXPECT_LT(worst, 0.05);
  std::cout << "[ measured ] 0.1-sample TOA noise: worst error " << worst << " m\n";
}

void expect_invalid(const std::function<void()>& call, const std::string& needle) {
  try {
    call();
    ADD_FAILURE() << "no exception; expected one mentioning '" << needle << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Multilateration, DegenerateInputIsRejectedWithAClearError) {
  std::mt19937_64 gen(7);
  const Scene scene = spec_room_scene(gen);
  const MicArray three = scene.mics.topRows(3);
  expect_invalid([&] { locate_from_tdoa(three, tdoas_to_first(three, scene.source)); },
                 "at least 4 microphones");
  expect_invalid([&] { locate_from_toa(three, times_of_arrival(three, scene.source)); },
                 "at least 4 microphones");

  MicArray line(5, 3);
  for (int i = 0; i < 5; ++i) line.row(i) << 0.5 * i, 1.0 + 0.25 * i, 1.0;
  expect_invalid([&] { locate_from_tdoa(line, tdoas_to_first(line, scene.source)); }, "collinear");
  expect_invalid([&] { locate_from_toa(line, times_of_arrival(line, scene.source)); }, "collinear");

  MicArray plane(6, 3);
  for (int i = 0; i < 6; ++i) plane.row(i) << std::cos(i), std::sin(2 * i), 0.0;
  expect_invalid([&] { locate_from_tdoa(plane, tdoas_to_first(plane, scene.source)); }, "coplanar");

  MicArray same(4, 3);
  same.setConstant(1.0);
  expect_invalid([&] { locate_from_toa(same, Eigen::VectorXd::Ones(4)); }, "coincide");

  expect_invalid([&] { locate_from_tdoa(scene.mics, Eigen::VectorXd::Zero(5)); }, "5 times for 6");
  Eigen::VectorXd bad = tdoas_to_first(scene.mics, scene.source);
  bad(2) = std::numeric_limits<double>::quiet_NaN();
  expect_invalid([&] { locate_from_tdoa(scene.mics, bad); }, "non-finite");
}

// ---- locate_from_pair_delays / locate_from_arrival_times / percentile ------------------------

std::vector<PairDelay> exact_pair_delays(const MicArray& mics, const Eigen::Vector3d& s,
                                         const std::vector<std::pair<int, int>>& pairs) {
  const Eigen::VectorXd toa = times_of_arrival(mics, s);
  std::vector<PairDelay> out;
  for (const auto& [a, b] : pairs) out.push_back({a, b, toa(a) - toa(b)});
  return out;
}

TEST(PairDelays, AllFifteenPairsOfSixMicsRecoverTheSource) {
  std::mt19937_64 gen(21);
  for (int trial = 0; trial < 20; ++trial) {
    const Scene scene = spec_room_scene(gen);
    std::vector<std::pair<int, int>> pairs;
    for (int a = 0; a < 6; ++a) {
      for (int b = a + 1; b < 6; ++b) pairs.emplace_back(a, b);
    }
    ASSERT_EQ(pairs.size(), 15U);
    const MultilaterationResult r =
        locate_from_pair_delays(scene.mics, exact_pair_delays(scene.mics, scene.source, pairs));
    EXPECT_LT((r.position - scene.source).norm(), 1e-3) << "trial " << trial;
    EXPECT_LT(r.rms_residual_m, 1e-6);
  }
}

TEST(PairDelays, AChainOfPairsInEitherOrderAndRepeatsRecoversTheSource) {
  std::mt19937_64 gen(22);
  for (int trial = 0; trial < 20; ++trial) {
    const Scene scene = spec_room_scene(gen);
    // A chain 3-1, 1-4, 5-4, 4-0, 0-2 (mixed orientation), one pair repeated.
    const std::vector<std::pair<int, int>> pairs{{3, 1}, {1, 4}, {5, 4}, {4, 0}, {0, 2}, {1, 4}};
    const MultilaterationResult r =
        locate_from_pair_delays(scene.mics, exact_pair_delays(scene.mics, scene.source, pairs));
    EXPECT_LT((r.position - scene.source).norm(), 1e-3) << "trial " << trial;
  }
}

TEST(PairDelays, MicrophonesInNoPairAreIgnored) {
  std::mt19937_64 gen(23);
  const Scene scene = spec_room_scene(gen);
  // Rows 0, 2, 3, 4, 5 only (four TDOAs, five microphones: 4 would admit a second exact
  // solution); row 1 is never read.
  const std::vector<std::pair<int, int>> pairs{{0, 2}, {0, 3}, {0, 5}, {2, 3}, {3, 5}, {4, 5}};
  MicArray mics = scene.mics;
  mics.row(1).setConstant(std::numeric_limits<double>::quiet_NaN());  // unused: never read
  const MultilaterationResult r =
      locate_from_pair_delays(mics, exact_pair_delays(scene.mics, scene.source, pairs));
  EXPECT_LT((r.position - scene.source).norm(), 1e-3);
}

TEST(PairDelays, BadPairsAreRejected) {
  std::mt19937_64 gen(24);
  const Scene scene = spec_room_scene(gen);
  const auto delays = [&](const std::vector<std::pair<int, int>>& pairs) {
    return exact_pair_delays(scene.mics, scene.source, pairs);
  };
  // Only 3 microphones in the pairs.
  expect_invalid(
      [&] {
        locate_from_pair_delays(scene.mics, delays({{0, 1}, {1, 2}, {0, 2}}));
      },
      "at least 4 microphones");
  expect_invalid([&] { locate_from_pair_delays(scene.mics, {}); }, "at least 4 microphones");
  // Two components {0, 1, 2} and {3, 4, 5}: six microphones, not connected.
  expect_invalid(
      [&] {
        locate_from_pair_delays(scene.mics, delays({{0, 1}, {1, 2}, {3, 4}, {4, 5}, {3, 5}}));
      },
      "do not connect");
  // a == b, rows out of range, non-finite delay.
  expect_invalid(
      [&] {
        locate_from_pair_delays(scene.mics, {{0, 1, 0.0}, {2, 2, 0.0}});
      },
      "to itself");
  expect_invalid([&] { locate_from_pair_delays(scene.mics, {{0, 6, 0.0}}); }, "row 6");
  expect_invalid([&] { locate_from_pair_delays(scene.mics, {{-1, 0, 0.0}}); }, "row -1");
  expect_invalid(
      [&] {
        locate_from_pair_delays(scene.mics, {{0, 1, std::numeric_limits<double>::infinity()}});
      },
      "non-finite");
}

TEST(ArrivalTimes, RepeatedRowsAreAveraged) {
  std::mt19937_64 gen(25);
  const Scene scene = spec_room_scene(gen);
  const Eigen::VectorXd toa = times_of_arrival(scene.mics, scene.source);
  // Rows in any order; row 2 measured twice, +-20 us around the truth; row 4 left out.
  const std::vector<int> rows{5, 2, 0, 2, 1, 3};
  const std::vector<double> times{toa(5), toa(2) + 20e-6, toa(0), toa(2) - 20e-6, toa(1), toa(3)};
  const MultilaterationResult r = locate_from_arrival_times(scene.mics, rows, times);
  EXPECT_LT((r.position - scene.source).norm(), 1e-3);
  EXPECT_LT(r.rms_residual_m, 1e-6);
  // Without averaging (only the +20 us copy, 6.9 mm too far) the estimate moves.
  const MultilaterationResult biased = locate_from_arrival_times(
      scene.mics, {5, 2, 0, 1, 3}, {toa(5), toa(2) + 20e-6, toa(0), toa(1), toa(3)});
  EXPECT_GT((biased.position - scene.source).norm(), 1e-5);
}

TEST(ArrivalTimes, BadInputIsRejected) {
  std::mt19937_64 gen(26);
  const Scene scene = spec_room_scene(gen);
  const Eigen::VectorXd toa = times_of_arrival(scene.mics, scene.source);
  expect_invalid(
      [&] {
        locate_from_arrival_times(scene.mics, {0, 1, 2, 1}, {toa(0), toa(1), toa(2), toa(1)});
      },
      "at least 4 microphones");
  expect_invalid(
      [&] {
        locate_from_arrival_times(scene.mics, {0, 1, 2, 3}, {toa(0)});
      },
      "1 times for 4 rows");
  expect_invalid(
      [&] {
        locate_from_arrival_times(scene.mics, {0, 1, 2, 7}, {toa(0), toa(1), toa(2), toa(3)});
      },
      "row 7");
}

TEST(Percentile, MatchesNumpyLinearInterpolation) {
  // numpy.percentile(v, q) with the default method='linear'.
  const std::vector<double> v{1.0, 2.0, 4.0, 7.0, 11.0};
  EXPECT_DOUBLE_EQ(percentile(v, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(percentile(v, 100.0), 11.0);
  EXPECT_DOUBLE_EQ(percentile(v, 50.0), 4.0);
  EXPECT_DOUBLE_EQ(percentile(v, 90.0), 9.4);  // pos 3.6: 7 + 0.6 * 4
  EXPECT_DOUBLE_EQ(percentile(v, 25.0), 2.0);  // pos 1.0
  EXPECT_DOUBLE_EQ(percentile(v, 10.0), 1.4);  // pos 0.4
  EXPECT_DOUBLE_EQ(percentile(v, 62.5), 5.5);  // pos 2.5
  const std::vector<double> even{0.5, 1.5, 3.0, 10.0};
  EXPECT_DOUBLE_EQ(percentile(even, 50.0), 2.25);  // pos 1.5
  EXPECT_DOUBLE_EQ(percentile(even, 90.0), 7.9);   // pos 2.7: 3 + 0.7 * 7
  EXPECT_DOUBLE_EQ(percentile({42.0}, 37.0), 42.0);
  EXPECT_TRUE(std::isnan(percentile({}, 50.0)));
  expect_invalid([] { percentile({1.0, 2.0}, 101.0); }, "expected [0, 100]");
  expect_invalid([] { percentile({1.0, 2.0}, -1.0); }, "expected [0, 100]");
}

}  // namespace
}  // namespace w2p::baseline
