// "apps" holding one object rather than a list.
module.exports = {
  apps: {
    name: 'solo',
    script: 'solo.js',
    instances: 2,
    exec_mode: 'fork',
    env: { TIER: 'one' },
  },
};
