module.exports = {
  apps: [
    {
      name: 'api',
      script: 'api.js',
      env: { NODE_ENV: 'development', API_URL: 'http://localhost' },
      env_staging: { NODE_ENV: 'staging', API_URL: 'https://staging.example' },
      env_production: { NODE_ENV: 'production', API_URL: 'https://example' },
    },
    {
      name: 'worker',
      script: 'worker.js',
      env_staging: { QUEUE: 'staging' },
    },
  ],
};
