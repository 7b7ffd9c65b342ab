const port = Number(process.env.NO_SUCH_VARIABLE_FOR_SURE);
if (Number.isNaN(port)) {
  throw new Error('PORT is not set');
}
