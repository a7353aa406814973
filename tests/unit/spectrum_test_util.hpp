#pragma once
// Random test matrices for the spectrum tests: Gaussian entries from a seeded engine.
#include <random>

#include <Eigen/QR>

#include "lorakit/spectrum.hpp"

namespace lorakit::test {

inline MatrixRM random_matrix(Eigen::Index rows, Eigen::Index cols, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  MatrixRM m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

// rows × cols with orthonormal columns (Q of a Gaussian matrix).
inline Eigen::MatrixXd random_orthonormal(Eigen::Index rows, Eigen::Index cols, std::mt19937_64& rng) {
  const Eigen::HouseholderQR<Eigen::MatrixXd> qr(Eigen::MatrixXd(random_matrix(rows, cols, rng)));
  return qr.householderQ() * Eigen::MatrixXd::Identity(rows, cols);
}

}  // namespace lorakit::test
