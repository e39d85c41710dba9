/** The server's custom status notification. */
export const STATUS_NOTIFICATION = 'gantry/status';
