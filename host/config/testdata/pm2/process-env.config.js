// Values computed from the environment `run` was called in.
const port = Number(process.env.PMD_CORPUS_PORT || 23950);
module.exports = {
  apps: [{
    name: 'from-env',
    script: 'server.js',
    env: {
      PORT: port,
      HOME_SET: process.env.HOME ? 'yes' : 'no',
      MODE: process.env.PMD_CORPUS_MODE || 'default',
    },
  }],
};
