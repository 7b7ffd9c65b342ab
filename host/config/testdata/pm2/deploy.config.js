module.exports = {
  apps: [{ name: 'site', script: 'index.js' }],
  deploy: {
    production: {
      user: 'deploy',
      host: ['203.0.113.7'],
      ref: 'origin/main',
      repo: 'git@example.org:me/site.git',
      path: '/srv/site',
      'post-deploy': 'npm ci && pm2 reload ecosystem.config.js --env production',
    },
  },
};
