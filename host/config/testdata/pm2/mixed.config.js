module.exports = {
  apps: [
    {
      name: 'gateway',
      script: 'gateway.js',
      instances: 2,
      exec_mode: 'cluster',
      env: { PORT: 23500 },
      env_production: { PORT: 23600, NODE_ENV: 'production' },
      wait_ready: true,
      listen_timeout: 10000,
    },
    {
      name: 'jobs',
      script: 'jobs.py',
      interpreter: 'python3',
      cron_restart: '*/30 * * * *',
      autorestart: false,
    },
    {
      name: 'static',
      script: 'serve',
      args: ['-s', 'build', '-l', '23700'],
      exec_mode: 'fork',
    },
  ],
};
