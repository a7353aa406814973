#pragma once
// Exact SVDs of factored deltas, computed from the factors without forming the dense matrix
// (MATH.md §1, §3–§5). All arithmetic in double, single-threaded per call (callers parallelise across
// modules). Shape mismatches throw Error(adapter_shape_mismatch); non-finite factors throw
// Error(numeric_failure). Messages carry no file/tensor names: callers add them.
//
// What every result gives its consumers (the planner's rank rules, a byte-budget allocator): the whole
// spectrum, never a prefix. `sigma` holds every singular value above the route's round-off floor, so any
// prefix σ₁…σ_L is there, Σσ² is the exact energy ‖ΔW‖²_F to round-off (the dropped values are below the
// floor), and Σσ is there for sv_cumulative. Singular vectors are computed only for the directions the
// caller asks for once it has seen σ (DirectionsWanted).
#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include <Eigen/Core>

namespace lorakit {

using MatrixRM = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// How factored_svd computed its result, cheapest first (see factored_svd).
enum class SvdRoute { cholesky, gram, qr, hadamard_gram, dense_gram };
const char* svd_route_name(SvdRoute route);

// SVD of B·A (B: m×R, A: R×n) as small transforms on the factors, for its first d ≤ ρ directions:
//   B · up_transform   = U_d · diag(√σ)       (m × d)
//   down_transform · A = diag(√σ) · V_dᵀ      (d × n)
// so B·A = Σ_i σ_i u_i v_iᵀ and the first k columns / rows give the best rank-k approximation with
// √σ split evenly between the factors. ρ ≤ min(m, n, R) is the numerical rank: singular values at or
// below the computation's own round-off bound (≈ max(m, n, R)·ε·‖B‖₂‖A‖₂, or the Gram route's error
// bound) are dropped; an all-zero product has ρ = 0 (R × 0 and 0 × R transforms). U and V are
// orthonormal to 1e-7 (the Cholesky route; 1e-8 or better otherwise); products and truncations are exact
// to ~ε·‖B‖‖A‖ either way.
struct FactoredSvd {
  Eigen::VectorXd sigma;           // ρ singular values, descending
  Eigen::MatrixXd up_transform;    // R × d
  Eigen::MatrixXd down_transform;  // d × R
  SvdRoute route = SvdRoute::cholesky;  // the cheapest route whose error bound was small enough
  std::size_t rank() const { return static_cast<std::size_t>(sigma.size()); }
  std::size_t directions() const { return static_cast<std::size_t>(up_transform.cols()); }
  // Keeps only the first k singular values and directions; k beyond them keeps all there are.
  void truncate(std::size_t k);
};

// How many leading directions a caller needs, chosen once all of σ is known (transforms for the rest
// would cost ~r³ and be thrown away). factored_svd calls it exactly once, with the final σ (maybe empty).
using DirectionsWanted = std::function<std::size_t(const Eigen::VectorXd& sigma)>;

// Cholesky route in float64 (BᵀB, AAᵀ, one Cholesky factor, one r×r symmetric eigen-decomposition); the
// Gram route (both Cholesky factors and the SVD of their r×r core) when the spectrum is wider than the
// first resolves (σ_min ≲ 4.7e-5·σ₁); the QR route when the Grams cannot resolve the factors —
// rank-deficient or ill-conditioned factors, or factors that nearly cancel (σ₁(BA) ≪ ‖B‖‖A‖).
// d = min(ρ, wanted(σ)), or ρ without `wanted`.
FactoredSvd factored_svd(const MatrixRM& B, const MatrixRM& A, const DirectionsWanted& wanted = {});

// The same from the factors' Grams G_B = BᵀB and G_A = AAᵀ (float64, lower triangles used), B having
// rows_b rows and A cols_a columns, for callers that form the Grams without a float64 copy of the
// factors. `factors` yields B and A themselves; it is called only when the Grams cannot resolve the
// product (the QR route).
using FactorSource = std::function<std::pair<MatrixRM, MatrixRM>()>;
FactoredSvd factored_svd_from_grams(const Eigen::MatrixXd& gram_b, const Eigen::MatrixXd& gram_a,
                                    Eigen::Index rows_b, Eigen::Index cols_a, const FactorSource& factors,
                                    const DirectionsWanted& wanted = {});

// Tucker fold (MATH.md §3): mid (r_a × r_b × kh × kw [× kt], flattened row-major as r_a × r_b × K)
// and down (r_b × in) give down' (r_a × in·K) with down'[a, i·K + s] = Σ_b mid[a, b, s] · down[b, i]
// — exactly the flattening of a plain conv LoRA's down (r, in, kh, kw).
MatrixRM fold_tucker(const MatrixRM& mid_flat /* r_a × (r_b·K) */, std::size_t r_b, const MatrixRM& down);

// Face-splitting products (MATH.md §4): (B1·A1) ⊙ (B2·A2) = face_split_up(B1,B2) · face_split_down(A1,A2).
// face_split_up: m × r1·r2, row i = kron(B1[i,:], B2[i,:]); face_split_down: r1·r2 × n, column j =
// kron(A1[:,j], A2[:,j]).
MatrixRM face_split_up(const MatrixRM& B1, const MatrixRM& B2);
MatrixRM face_split_down(const MatrixRM& A1, const MatrixRM& A2);

// A LoHa's ΔW/scale = (B1·A1) ⊙ (B2·A2), B_t: m × r_t, A_t: r_t × n, kept as its four small factors.
// hadamard_svd writes it as B·A with an identity on the shorter side — B = I_m and A = ΔW when m ≤ n,
// else B = ΔW and A = I_n — and the products below apply that B and A, forming ΔW a block at a time.
struct HadamardProduct {
  MatrixRM B1, A1, B2, A2;
  Eigen::Index rows() const { return B1.rows(); }
  Eigen::Index cols() const { return A1.cols(); }
  Eigen::Index inner() const { return B1.cols() * B2.cols(); }  // r1·r2: the face-splitting form's
  bool identity_up() const { return rows() <= cols(); }
  MatrixRM up_times(const Eigen::MatrixXd& up_transform) const;      // B · up_transform
  MatrixRM times_down(const Eigen::MatrixXd& down_transform) const;  // down_transform · A
  HadamardProduct transposed() const;                                // ΔWᵀ = (A1ᵀB1ᵀ) ⊙ (A2ᵀB2ᵀ)
};

// SVD of a LoHa in the identity form above (FactoredSvd's transforms are on that B and A: R = min(m, n)).
// Singular values are the square roots of one symmetric eigenproblem, solved by LAPACK (Householder
// tridiagonalisation, all eigenvalues, eigenvectors only for the d wanted directions):
//  - r1·r2 < min(m, n): the face-splitting Grams G_B = F_BᵀF_B and G_A = F_A·F_Aᵀ (r1r2 × r1r2, MATH.md §4,
//    from r1(r1+1)/2 × r2(r2+1)/2 products) and M = L_Aᵀ·G_B·L_A with G_A = L_A·L_Aᵀ (route hadamard_gram).
//    Only products of the factors are formed, never an inverse, so the factors' condition does not
//    matter; a singular G_A (rank-deficient F_A) takes the next route.
//  - otherwise ΔW·ΔWᵀ (or ΔWᵀ·ΔW) on the shorter side, from ΔW a block of columns at a time (dense_gram).
// Each eigenvalue σ² is exact to ~max(m, n)·ε·‖G_B‖‖G_A‖ in absolute terms (ΔW's Gram: ·σ₁²; for LoHa
// factors ‖G_B‖‖G_A‖ is 1–2·σ₁²): singular values agree with a dense float64 SVD to ~1e-14·σ₁ except near
// the floor, and values σ² at or below the floor max(m, n)·ε·‖G_B‖_F‖G_A‖_F (or ·σ₁²) are round-off and
// dropped — σ up to a few 1e-6·σ₁, whose squares are < 1e-10 of the energy. The written directions are
// orthonormal to ~ε·σ₁²/(σᵢσⱼ) (hadamard_gram) or to round-off (dense_gram), so B·up_transform and
// down_transform·A are an orthogonal projection of ΔW: the truncation error is the optimal one.
FactoredSvd hadamard_svd(const HadamardProduct& product, const DirectionsWanted& wanted = {});

// SVD of one Kronecker factor, explicit: W = U · diag(σ) · Vᵀ, ρ columns (numerical rank).
struct ExplicitSvd {
  Eigen::VectorXd sigma;  // descending
  MatrixRM U;             // rows × ρ
  MatrixRM V;             // cols × ρ
};
ExplicitSvd explicit_svd(const MatrixRM& W);                        // dense (small full factors)
ExplicitSvd explicit_svd(const MatrixRM& B, const MatrixRM& A);     // of B·A, factor-space

// kron(W1, W2) (MATH.md §5): singular values are products σ1_i·σ2_j.
struct KronSvd {
  ExplicitSvd w1;
  ExplicitSvd w2;
  Eigen::VectorXd sigma;                              // all products, descending; ties by (i, j) ascending
  std::vector<std::pair<std::size_t, std::size_t>> pairs;  // (i, j) of each sigma entry
};
KronSvd kron_svd(ExplicitSvd w1, ExplicitSvd w2);
// Best rank-k factors of kron(W1, W2): up (a·b × k), down (k × c·d), √σ split evenly:
//   up[:, t] = √σ_t · kron(u1_i, u2_j),  down[t, :] = √σ_t · kron(v1_i, v2_j)ᵀ,  (i, j) = pairs[t].
// k ≥ sigma.size() gives all sigma.size() directions. For conv, W2 is flattened b × (d·kh·kw).
std::pair<MatrixRM, MatrixRM> kron_truncate(const KronSvd& svd, std::size_t k);

}  // namespace lorakit
