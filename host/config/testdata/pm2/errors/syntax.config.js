module.exports = {
  apps: [
    { name: 'a' script: 'index.js' },
  ],
};
