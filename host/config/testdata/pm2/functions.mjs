// Functions and undefined values do not survive JSON, as with PM2.
export default {
  apps: [{
    name: 'fn',
    script: 'index.js',
    env: { A: '1', B: undefined },
    transform() { return 1; },
  }],
};
