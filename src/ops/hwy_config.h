#pragma once
// Included first by every Highway translation unit of ops/, so all agree on the target
// list: every attainable target, including the portable fallback exposed as "scalar"
// (EMU128, or HWY_SCALAR with GCC < 12.3 where Highway deems EMU128 broken), minus SSSE3 (superseded by SSE4) and AVX3_DL (no kernel of ours uses its extra instructions).
#ifndef HWY_COMPILE_ALL_ATTAINABLE
#define HWY_COMPILE_ALL_ATTAINABLE
#endif
#ifndef HWY_DISABLED_TARGETS
#if defined(__aarch64__)
// Arm: NEON (and the portable fallback). SVE/SVE2 are disabled: the dot kernels keep per-token
// accumulators and decoded blocks in arrays of vectors (VF acc[NT]), and SVE vector types are
// sizeless, so they cannot be array elements and those targets do not compile.
#define HWY_DISABLED_TARGETS (HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128)
#else
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_AVX3_DL)
#endif
#endif
