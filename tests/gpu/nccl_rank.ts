// Rank 1 of tests/gpu/nccl.test.ts, a child process on its own GPU
// (CUDA_VISIBLE_DEVICES and NCCL_NVLS_ENABLE=0 set by the test).
import { runCollectives } from './nccl_collectives.js';

const result = runCollectives(Number(process.env.VT_TEST_RANK), Number(process.env.VT_TEST_WORLD), process.env.VT_TEST_NCCL_ID!);
process.send!(result, () => process.exit(0));
