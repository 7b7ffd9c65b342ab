// An ES module without a default export: its named export "apps" is the config.
export const apps = [
  { name: 'named-api', script: 'api.mjs', instances: 2, exec_mode: 'cluster', env: { PORT: 23310 } },
];
