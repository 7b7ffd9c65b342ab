module.exports = {
  apps: [
    {
      name: 'heavy',
      script: 'server.js',
      node_args: ['--max-old-space-size=512', '--enable-source-maps'],
      max_memory_restart: '600M',
    },
    {
      name: 'bun-app',
      script: 'index.ts',
      interpreter: '/usr/local/bin/bun',
    },
  ],
};
