// A PM2 file as PM2 users write it; export reads it with the loader `run` uses.
module.exports = {
  apps: [
    {
      name: "pm2-api",
      script: "./api.js",
      instances: 2,
      exec_mode: "cluster",
      env: { NODE_ENV: "development" },
      max_memory_restart: "300M",
    },
  ],
};
