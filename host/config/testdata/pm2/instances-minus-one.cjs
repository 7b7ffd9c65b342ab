module.exports = {
  apps: [
    { name: 'spare-one', script: 'worker.js', instances: -1, exec_mode: 'fork' },
    { name: 'spare-text', script: 'worker.js', instances: '-1' },
  ],
};
