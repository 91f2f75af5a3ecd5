// Test-only preload for the soak's server child (with --expose-gc): SIGUSR2 runs
// full garbage collections of the main isolate, so that the soak reads RSS after
// garbage is gone rather than wherever V8's heap sizing happens to stand.
process.on('SIGUSR2', () => {
  globalThis.gc?.({ type: 'major', execution: 'sync' });
  globalThis.gc?.({ type: 'major', execution: 'sync' });
});
