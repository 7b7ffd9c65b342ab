// A Node cluster on one port, one worker per CPU.
const port = 23100;
module.exports = {
  apps: [{
    name: 'web',
    script: './dist/main.js',
    instances: 'max',
    exec_mode: 'cluster_mode',
    env: { PORT: port, NODE_ENV: 'production' },
  }],
};
