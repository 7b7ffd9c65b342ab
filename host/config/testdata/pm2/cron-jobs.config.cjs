const jobs = [
  { name: 'nightly-report', script: 'report.js', cron_restart: '0 2 * * *' },
  { name: 'cache-warm', script: 'warm.js', cron: '*/15 * * * *' },
];
module.exports = {
  apps: jobs.map((j) => ({ ...j, autorestart: false, watch: false })),
};
