/*
 * Little-endian loads and stores on byte buffers of any alignment. Built from bytes and
 * shifts (floats through memcpy of their bit pattern), so they are correct on any host and
 * free of aliasing and alignment UB; GCC folds them into single loads/stores on Cortex-M4.
 */
#ifndef TS_LE_H
#define TS_LE_H

#include <stdint.h>
#include <string.h>

static inline uint16_t ts_get_u16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] | (uint16_t)((uint16_t)p[1] << 8));
}

static inline uint32_t ts_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline int16_t ts_get_i16(const uint8_t *p)
{
    uint16_t u = ts_get_u16(p);
    int16_t v;
    memcpy(&v, &u, sizeof v); /* two's complement bits, no implementation-defined cast */
    return v;
}

static inline int32_t ts_get_i32(const uint8_t *p)
{
    uint32_t u = ts_get_u32(p);
    int32_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static inline float ts_get_f32(const uint8_t *p)
{
    uint32_t u = ts_get_u32(p);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

static inline void ts_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void ts_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void ts_put_i16(uint8_t *p, int16_t v)
{
    uint16_t u;
    memcpy(&u, &v, sizeof u);
    ts_put_u16(p, u);
}

static inline void ts_put_i32(uint8_t *p, int32_t v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    ts_put_u32(p, u);
}

static inline void ts_put_f32(uint8_t *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    ts_put_u32(p, u);
}

#endif
