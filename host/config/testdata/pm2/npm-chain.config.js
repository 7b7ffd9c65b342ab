module.exports = {
  apps: [
    {
      name: 'site',
      script: 'npm ci && npm run build && npm start',
      env: { NODE_ENV: 'production', PORT: '23910' },
      autorestart: false,
    },
  ],
};
