const common = { NODE_ENV: 'production' };
export default {
  apps: [
    { name: 'esm-api', script: 'api.mjs', env: { ...common, PORT: 23300 }, exec_mode: 'cluster', instances: 2 },
    { name: 'esm-cron', script: 'cron.mjs', autorestart: false, env: common },
  ],
};
