module.exports = {
  apps: [{
    name: 'dotenv-app',
    script: 'app.js',
    env_file: '.env.corpus',
    env: { OVERRIDE: 'from-env' },
  }],
};
