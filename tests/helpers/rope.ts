// The rope cos/sin table the kernel tests feed vt_rope and its fused variants (CPU and GPU).

/** [maxPos, rot] f32: cos in the first rot / 2 columns, sin in the rest (theta 10000). */
export function ropeCosSin(maxPos: number, rot: number): Float32Array {
  const cs = new Float32Array(maxPos * rot);
  for (let p = 0; p < maxPos; p++)
    for (let i = 0; i < rot / 2; i++) {
      const f = p / 10000 ** ((2 * i) / rot);
      cs[p * rot + i] = Math.cos(f);
      cs[p * rot + rot / 2 + i] = Math.sin(f);
    }
  return cs;
}
